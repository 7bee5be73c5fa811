--- pith for Neovim: registers the `pith serve` language server (Neovim >= 0.11 through
--- `vim.lsp.config`/`vim.lsp.enable`, older versions through nvim-lspconfig or a FileType
--- autocmd), turns on LSP inline completion (Neovim >= 0.12) and adds the :Pith* user commands.
---
--- ```lua
--- require('pith').setup({ cmd = { 'pith', 'serve' } }) -- every option has a default
--- ```
local M = {}

--- The workspace/executeCommand names pith understands (editors/contract.json).
M.commands = {
  ask = 'pith.ask',
  explain = 'pith.explain',
  status = 'pith.status',
  context = 'pith.context', -- the custom request `pith/context`, not an executeCommand
  memory_list = 'pith.memory.list',
  memory_clear = 'pith.memory.clear',
}

--- The settings pith reads from initializationOptions / didChangeConfiguration, as dotted paths
--- into the nested `settings` table (mirrors `.pith/config.toml`; editors/contract.json).
M.known_settings = {
  'model.path',
  'model.threads',
  'model.context',
  'remote.url',
  'remote.api',
  'remote.model',
  'remote.api_key_env',
  'completion.budget_tokens',
  'completion.debounce_ms',
  'completion.max_tokens',
  'completion.completion_item_fallback',
  'completion.item_budget_ms',
  'hover.explain',
  'hover.timeout_ms',
}

---@class pith.Options
---@field cmd? string[] how to start the server (default `{ 'pith', 'serve' }`)
---@field filetypes? string[] (default `{ 'python', 'rust' }`)
---@field root_markers? string[] (default `.pith`, `.git`, `pyproject.toml`, `Cargo.toml`)
---@field settings? table nested table mirroring `.pith/config.toml`, e.g. `{ model = { threads = 4 } }`
---@field inline_completion? boolean enable LSP inline completion on Neovim >= 0.12 (default true)
---@field accept_key? string|false insert-mode key accepting the suggestion (default `<C-y>`)
---@field user_commands? boolean create :PithAsk and friends (default true)
---@field output? 'split'|'float' where answers are shown (default 'split')
---@field budget_tokens? integer context budget for :PithContext (default: the server's)
---@field on_attach? fun(client: vim.lsp.Client, bufnr: integer)

---@type pith.Options
M.defaults = {
  cmd = { 'pith', 'serve' },
  filetypes = { 'python', 'rust' },
  root_markers = { '.pith', '.git', 'pyproject.toml', 'Cargo.toml' },
  settings = {},
  inline_completion = true,
  accept_key = '<C-y>',
  user_commands = true,
  output = 'split',
  budget_tokens = nil,
  on_attach = nil,
}

---@type pith.Options
M.options = vim.deepcopy(M.defaults)

local function notify(message, level)
  vim.notify('pith: ' .. message, level or vim.log.levels.INFO)
end

--- Dotted paths of the leaves of a nested settings table (`{ model = { path = 'x' } }` gives
--- `{ 'model.path' }`).
---@param settings table
---@return string[]
function M.setting_paths(settings)
  local paths = {}
  local function walk(prefix, value)
    if type(value) == 'table' and not vim.islist(value) and next(value) ~= nil then
      for key, inner in pairs(value) do
        walk(prefix == '' and tostring(key) or (prefix .. '.' .. tostring(key)), inner)
      end
    elseif prefix ~= '' then
      table.insert(paths, prefix)
    end
  end
  walk('', settings or {})
  table.sort(paths)
  return paths
end

--- Setting paths pith does not know (typos the user would otherwise never hear about).
---@param settings table
---@return string[]
function M.unknown_settings(settings)
  local known = {}
  for _, path in ipairs(M.known_settings) do
    known[path] = true
  end
  local unknown = {}
  for _, path in ipairs(M.setting_paths(settings)) do
    if not known[path] then
      table.insert(unknown, path)
    end
  end
  return unknown
end

--- The client configuration for pith (the shape `vim.lsp.config` takes).
---@param opts? pith.Options
---@return vim.lsp.Config
function M.lsp_config(opts)
  opts = vim.tbl_deep_extend('force', M.options, opts or {})
  local settings = opts.settings or {}
  return {
    cmd = opts.cmd,
    filetypes = opts.filetypes,
    root_markers = opts.root_markers,
    -- Sent both ways: pith reads initializationOptions at start and
    -- workspace/didChangeConfiguration (Neovim sends `settings` there) afterwards.
    init_options = settings,
    settings = settings,
    on_attach = function(client, bufnr)
      M._on_attach(client, bufnr)
      if opts.on_attach then
        opts.on_attach(client, bufnr)
      end
    end,
  }
end

--- The first pith client attached to `bufnr` (or to any buffer).
---@param bufnr? integer
---@return vim.lsp.Client?
function M.client(bufnr)
  local clients = vim.lsp.get_clients({ name = 'pith', bufnr = bufnr })
  if #clients == 0 and bufnr then
    clients = vim.lsp.get_clients({ name = 'pith' })
  end
  return clients[1]
end

--- Sends a request through `client` (method-call syntax on Neovim >= 0.11, function syntax
--- before).
local function request(client, method, params, handler, bufnr)
  if vim.fn.has('nvim-0.11') == 1 then
    return client:request(method, params, handler, bufnr)
  end
  return client.request(method, params, handler, bufnr)
end

--- Runs a pith command on the server; `on_result(err, result)` is called on the main loop.
---@param command string one of `M.commands`
---@param arguments? any[]
---@param on_result fun(err: table?, result: any)
---@param bufnr? integer
function M.execute(command, arguments, on_result, bufnr)
  local client = M.client(bufnr)
  if not client then
    on_result({ message = 'no pith language server is attached (see :checkhealth pith)' }, nil)
    return
  end
  local params = { command = command, arguments = arguments or {} }
  request(client, 'workspace/executeCommand', params, function(err, result)
    on_result(err, result)
  end, bufnr)
end

--- Lines to show for a command's result: a string as is, an answer-like object by its text,
--- anything else as JSON.
---@param result any
---@return string[]
function M.render(result)
  if result == nil or result == vim.NIL then
    return { '(no result)' }
  end
  if type(result) == 'string' then
    return vim.split(result, '\n', { plain = true })
  end
  if type(result) == 'table' then
    for _, key in ipairs({ 'answer', 'explanation', 'markdown', 'text', 'value', 'message' }) do
      if type(result[key]) == 'string' then
        local lines = vim.split(result[key], '\n', { plain = true })
        if type(result.citations) == 'table' and #result.citations > 0 then
          table.insert(lines, '')
          table.insert(lines, 'Sources:')
          for _, citation in ipairs(result.citations) do
            local where = type(citation) == 'table'
                and ((citation.path or citation.uri or '?') .. ':' .. tostring(
                  citation.line or citation.startLine or '?'
                ))
              or tostring(citation)
            table.insert(lines, '- ' .. where)
          end
        end
        return lines
      end
    end
  end
  local ok, json = pcall(vim.json.encode, result)
  return vim.split(ok and json or vim.inspect(result), '\n', { plain = true })
end

--- Lines for a `pith/context` result (`{ snippets = { { path, startLine, endLine, text,
--- reason, score } } }`).
---@param result any
---@return string[]
function M.render_context(result)
  local snippets = type(result) == 'table' and result.snippets or nil
  if type(snippets) ~= 'table' or #snippets == 0 then
    return { '(pith found no context here)' }
  end
  local lines = {}
  for _, snippet in ipairs(snippets) do
    local path = snippet.path or (snippet.uri and vim.uri_to_fname(snippet.uri)) or '?'
    local header = ('## %s:%s-%s'):format(
      -- Relative to the working directory when inside it: shorter and still jumpable (gF).
      path ~= '?' and vim.fn.fnamemodify(path, ':~:.') or path,
      -- startLine/endLine are 0-based LSP lines; people read 1-based ones.
      tonumber(snippet.startLine) and (snippet.startLine + 1) or '?',
      tonumber(snippet.endLine) and (snippet.endLine + 1) or '?'
    )
    if snippet.reason then
      header = header .. '  (' .. tostring(snippet.reason)
      if tonumber(snippet.score) then
        header = header .. (', score %.2f'):format(snippet.score)
      end
      header = header .. ')'
    end
    table.insert(lines, header)
    vim.list_extend(lines, vim.split(tostring(snippet.text or ''), '\n', { plain = true }))
    table.insert(lines, '')
  end
  return lines
end

--- Shows `lines` in a scratch buffer named `pith://<title>` (reused between calls), in a split
--- or a float.
---@param title string
---@param lines string[]
---@return integer bufnr
function M.show(title, lines)
  local name = 'pith://' .. title
  local bufnr = vim.fn.bufnr(name)
  if bufnr == -1 then
    bufnr = vim.api.nvim_create_buf(false, true)
    vim.api.nvim_buf_set_name(bufnr, name)
    vim.bo[bufnr].bufhidden = 'hide'
    vim.bo[bufnr].filetype = 'markdown'
  end
  vim.bo[bufnr].modifiable = true
  vim.api.nvim_buf_set_lines(bufnr, 0, -1, false, lines)
  vim.bo[bufnr].modifiable = false
  if vim.fn.bufwinid(bufnr) == -1 then
    if M.options.output == 'float' then
      local width = math.min(100, math.floor(vim.o.columns * 0.8))
      local height = math.min(#lines + 1, math.floor(vim.o.lines * 0.6))
      local win = vim.api.nvim_open_win(bufnr, true, {
        relative = 'editor',
        width = math.max(width, 20),
        height = math.max(height, 1),
        row = math.floor((vim.o.lines - height) / 2),
        col = math.floor((vim.o.columns - width) / 2),
        border = 'rounded',
        title = ' pith: ' .. title .. ' ',
      })
      vim.keymap.set('n', 'q', function()
        pcall(vim.api.nvim_win_close, win, true)
      end, { buffer = bufnr, nowait = true })
    else
      local previous = vim.api.nvim_get_current_win()
      vim.cmd('botright split')
      vim.api.nvim_win_set_buf(0, bufnr)
      vim.api.nvim_set_current_win(previous)
    end
  end
  return bufnr
end

--- Runs `command` and shows its result (or its error) in the scratch buffer `title`.
local function execute_and_show(title, command, arguments, bufnr)
  M.show(title, { 'pith is working on it…' })
  M.execute(command, arguments, function(err, result)
    if err then
      M.show(title, { 'pith: ' .. command .. ' failed: ' .. tostring(err.message or err) })
      return
    end
    M.show(title, M.render(result))
  end, bufnr)
end

--- :PithAsk {question}
---@param question string
function M.ask(question)
  if not question or vim.trim(question) == '' then
    notify('usage: :PithAsk {question}', vim.log.levels.WARN)
    return
  end
  execute_and_show('ask', M.commands.ask, { question }, vim.api.nvim_get_current_buf())
end

--- :PithExplain on lines `line1`..`line2` (1-based, inclusive) of the current buffer.
---@param line1 integer
---@param line2 integer
function M.explain(line1, line2)
  local bufnr = vim.api.nvim_get_current_buf()
  local client = M.client(bufnr)
  if not client then
    notify('no pith language server is attached (see :checkhealth pith)', vim.log.levels.ERROR)
    return
  end
  local last = vim.api.nvim_buf_get_lines(bufnr, line2 - 1, line2, false)[1] or ''
  local range = vim.lsp.util.make_given_range_params(
    { line1, 0 },
    { line2, math.max(#last - 1, 0) },
    bufnr,
    client.offset_encoding
  ).range
  execute_and_show('explain', M.commands.explain, { vim.uri_from_bufnr(bufnr), range }, bufnr)
end

--- :PithStatus
function M.status()
  execute_and_show('status', M.commands.status, {}, vim.api.nvim_get_current_buf())
end

--- :PithMemory
function M.memory_list()
  execute_and_show('memory', M.commands.memory_list, {}, vim.api.nvim_get_current_buf())
end

--- :PithMemoryClear
function M.memory_clear()
  M.execute(M.commands.memory_clear, {}, function(err)
    if err then
      notify('clearing memory failed: ' .. tostring(err.message or err), vim.log.levels.ERROR)
    else
      notify('session memory cleared')
    end
  end, vim.api.nvim_get_current_buf())
end

--- :PithContext: the snippets pith would give the model at the cursor.
function M.context()
  local bufnr = vim.api.nvim_get_current_buf()
  local client = M.client(bufnr)
  if not client then
    notify('no pith language server is attached (see :checkhealth pith)', vim.log.levels.ERROR)
    return
  end
  local params = vim.lsp.util.make_position_params(0, client.offset_encoding)
  params.budgetTokens = M.options.budget_tokens
  M.show('context', { 'pith is gathering context…' })
  request(client, 'pith/context', params, function(err, result)
    if err then
      M.show('context', { 'pith: pith/context failed: ' .. tostring(err.message or err) })
      return
    end
    M.show('context', M.render_context(result))
  end, bufnr)
end

local create_user_commands

function M._on_attach(_, bufnr)
  -- Also reached without setup() (plain `vim.lsp.enable('pith')` through lsp/pith.lua).
  if M.options.user_commands then
    create_user_commands()
  end
  if M.options.inline_completion and vim.lsp.inline_completion then
    vim.lsp.inline_completion.enable(true, { bufnr = bufnr })
  end
end

create_user_commands = function()
  local command = vim.api.nvim_create_user_command
  command('PithAsk', function(args)
    M.ask(args.args)
  end, { nargs = '+', desc = 'Ask pith a question about the codebase' })
  command('PithExplain', function(args)
    M.explain(args.line1, args.line2)
  end, { range = true, desc = 'Explain the selected lines (or the current line) with pith' })
  command('PithStatus', M.status, { desc = 'Show the model and index state of pith' })
  command('PithContext', M.context, { desc = 'Show the context pith retrieves at the cursor' })
  command('PithMemory', M.memory_list, { desc = "List pith's session memory" })
  command('PithMemoryClear', M.memory_clear, { desc = "Clear pith's session memory" })
end

local function map_accept_key(key)
  vim.keymap.set('i', key, function()
    if not vim.lsp.inline_completion.get() then
      -- Nothing to accept: the key keeps its usual meaning.
      return key
    end
  end, { expr = true, desc = 'Accept the pith inline completion' })
end

--- Registers pith with Neovim's LSP client; every option has a default.
---@param opts? pith.Options
function M.setup(opts)
  M.options = vim.tbl_deep_extend('force', vim.deepcopy(M.defaults), opts or {})
  local unknown = M.unknown_settings(M.options.settings)
  if #unknown > 0 then
    notify(
      'unknown setting(s) ' .. table.concat(unknown, ', ') .. ' (see editors/README.md)',
      vim.log.levels.WARN
    )
  end

  if vim.fn.has('nvim-0.11') == 1 then
    vim.lsp.config('pith', M.lsp_config())
    vim.lsp.enable('pith')
  else
    local has_lspconfig, lspconfig = pcall(require, 'lspconfig')
    if has_lspconfig then
      local config = M.lsp_config()
      lspconfig.pith.setup({
        cmd = config.cmd,
        filetypes = config.filetypes,
        init_options = config.init_options,
        settings = config.settings,
        on_attach = config.on_attach,
      })
    else
      vim.api.nvim_create_autocmd('FileType', {
        group = vim.api.nvim_create_augroup('pith', { clear = true }),
        pattern = M.options.filetypes,
        callback = function(event)
          local config = M.lsp_config()
          config.name = 'pith'
          config.root_dir = vim.fs.root(event.buf, config.root_markers)
          vim.lsp.start(config, { bufnr = event.buf })
        end,
      })
    end
  end

  if M.options.user_commands then
    create_user_commands()
  end
  if M.options.inline_completion and vim.lsp.inline_completion and M.options.accept_key then
    map_accept_key(M.options.accept_key)
  end
end

return M
