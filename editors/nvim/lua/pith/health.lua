--- `:checkhealth pith`: Neovim version, the pith binary, its model, settings and the attached
--- client.
local M = {}

function M.check()
  local health = vim.health
  local pith = require('pith')

  health.start('Neovim')
  if vim.fn.has('nvim-0.11') == 1 then
    health.ok('Neovim >= 0.11: pith is registered with vim.lsp.config/vim.lsp.enable')
  elseif vim.fn.has('nvim-0.10') == 1 then
    health.warn('Neovim 0.10: pith starts through nvim-lspconfig or a FileType autocmd', {
      'Upgrade to Neovim 0.12 for inline completion',
    })
  else
    health.error('pith needs Neovim >= 0.10')
  end
  if vim.lsp.inline_completion then
    health.ok('LSP inline completion is available (accept key: ' .. tostring(pith.options.accept_key) .. ')')
  else
    health.warn('This Neovim has no vim.lsp.inline_completion (needs 0.12): no ghost-text suggestions', {
      'pith still offers its suggestion as a completion item when completion.completion_item_fallback is on',
    })
  end

  health.start('pith binary')
  local cmd = pith.options.cmd or {}
  local executable = cmd[1]
  if not executable or vim.fn.executable(executable) ~= 1 then
    health.error(('`%s` is not executable'):format(tostring(executable)), {
      'Run scripts/setup.sh, or pass the full path: require("pith").setup({ cmd = { "/path/to/pith", "serve" } })',
    })
    return
  end
  health.ok('found ' .. vim.fn.exepath(executable))
  local version = vim.system({ executable, '--version' }, { text = true }):wait(5000)
  if version.code == 0 then
    health.ok(vim.trim(version.stdout or ''))
  else
    health.error('`' .. executable .. ' --version` failed: ' .. vim.trim(version.stderr or ''))
  end

  health.start('Model')
  local settings = pith.options.settings or {}
  local remote = settings.remote or {}
  local model_path = (settings.model or {}).path
  if type(remote.url) == 'string' and remote.url ~= '' then
    health.info('remote model server: ' .. remote.url .. ' (' .. tostring(remote.api or 'infill') .. ')')
  end
  if not model_path then
    local where = vim.system({ executable, 'model', 'path' }, { text = true }):wait(5000)
    if where.code == 0 then
      model_path = vim.trim(where.stdout or '')
    end
  end
  if model_path and model_path ~= '' and vim.uv.fs_stat(vim.fs.normalize(model_path)) then
    health.ok('model: ' .. model_path)
  elseif not (type(remote.url) == 'string' and remote.url ~= '') then
    health.warn('model not found' .. (model_path and (': ' .. model_path) or ''), {
      'Install the default model: pith model install',
      'Or set settings.model.path / settings.remote.url in require("pith").setup()',
    })
  end

  health.start('Settings')
  local unknown = pith.unknown_settings(settings)
  if #unknown == 0 then
    health.ok('settings: ' .. (next(settings) and vim.inspect(settings, { newline = ' ', indent = '' }) or 'defaults'))
  else
    health.warn('unknown settings: ' .. table.concat(unknown, ', '), {
      'Known: ' .. table.concat(pith.known_settings, ', '),
    })
  end

  health.start('Client')
  local clients = vim.lsp.get_clients({ name = 'pith' })
  if #clients == 0 then
    health.info('no pith client is running (open a Python or Rust file in a project)')
  else
    for _, client in ipairs(clients) do
      health.ok(('client %d attached, root %s'):format(client.id, tostring(client.root_dir)))
    end
  end
  health.info('Logs: :LspLog (client side); set PITH_LOG=debug before starting Neovim for the server')
end

return M
