--- End-to-end check of the pith Neovim plugin through Neovim's own LSP client, driven by
--- tests/editors.rs: `nvim --headless --clean --cmd 'set rtp^=editors/nvim' -c 'luafile e2e.lua'`.
---
--- Environment: PITH_E2E_CMD (JSON array: the server command), PITH_E2E_WORKSPACE (the fixture
--- workspace), PITH_E2E_RESULT (where the JSON result goes), PITH_E2E_CONTRACT
--- (editors/contract.json), PITH_E2E_TIMEOUT_MS (per wait, default 60000), PITH_E2E_ROOTLESS
--- (optional: a folder outside any project holding geometry.py and report.py, opened last).
---
--- The result is `{ checks = { { name, ok, skipped, detail } }, status = <pith.status result> }`.
--- The script never stops at a failed check: every check runs and reports.
local env = vim.env
local result_path = assert(env.PITH_E2E_RESULT, 'PITH_E2E_RESULT is not set')
local workspace = assert(env.PITH_E2E_WORKSPACE, 'PITH_E2E_WORKSPACE is not set')
local server_cmd = vim.json.decode((assert(env.PITH_E2E_CMD, 'PITH_E2E_CMD is not set')))
local timeout_ms = tonumber(env.PITH_E2E_TIMEOUT_MS) or 60000

local checks = {}
local report = { checks = checks }

local function record(name, ok, detail, skipped)
  table.insert(checks, { name = name, ok = ok and true or false, skipped = skipped or false, detail = detail or '' })
end

local function finish()
  local file = assert(io.open(result_path, 'w'))
  file:write(vim.json.encode(report))
  file:close()
  vim.cmd('qall!')
end

-- The test body runs in a coroutine resumed from timers, so Neovim's main loop (LSP messages,
-- typeahead, autocmds) runs between steps exactly as in a real session.
local body

local function sleep(ms)
  local co = assert(coroutine.running())
  vim.defer_fn(function()
    local ok, err = coroutine.resume(co)
    if not ok then
      record('script', false, 'error: ' .. tostring(err))
      finish()
    end
  end, ms)
  coroutine.yield()
end

--- Polls `condition` until it returns a truthy value or `timeout` ms pass.
local function wait_for(condition, timeout)
  local deadline = vim.uv.now() + (timeout or timeout_ms)
  while vim.uv.now() < deadline do
    local ok, value = pcall(condition)
    if ok and value then
      return value
    end
    sleep(50)
  end
  return nil
end

local function buffer_text(bufnr)
  return table.concat(vim.api.nvim_buf_get_lines(bufnr, 0, -1, false), '\n')
end

--- Waits for the scratch buffer `pith://<title>` to hold something other than the placeholder.
local function wait_for_output(title)
  return wait_for(function()
    local bufnr = vim.fn.bufnr('pith://' .. title)
    if bufnr == -1 then
      return nil
    end
    local text = buffer_text(bufnr)
    if text:find('is working on it', 1, true) or text:find('is gathering context', 1, true) then
      return nil
    end
    return text
  end)
end

--- A synchronous-looking request through the pith client (yields until the answer).
local function request(client, method, params, bufnr)
  local co = assert(coroutine.running())
  local done, answer_err, answer = false, nil, nil
  client:request(method, params, function(err, result)
    answer_err, answer, done = err, result, true
  end, bufnr)
  if not wait_for(function()
    return done
  end) then
    return { message = 'timed out after ' .. timeout_ms .. ' ms' }, nil
  end
  assert(coroutine.running() == co)
  return answer_err, answer
end

local function find_line(bufnr, needle)
  for index, line in ipairs(vim.api.nvim_buf_get_lines(bufnr, 0, -1, false)) do
    local column = line:find(needle, 1, true)
    if column then
      return index, column
    end
  end
end

local function hover_text(contents)
  if type(contents) == 'string' then
    return contents
  end
  if type(contents) == 'table' then
    if contents.value then
      return contents.value
    end
    local parts = {}
    for _, part in ipairs(contents) do
      table.insert(parts, hover_text(part))
    end
    return table.concat(parts, '\n')
  end
  return ''
end

local function has_no_model(status)
  if type(status) ~= 'table' then
    return true
  end
  local model = status.model
  if model == nil or model == vim.NIL or model == false then
    return true
  end
  if type(model) == 'table' then
    return model.loaded == false or model.available == false or model.ready == false
  end
  return false
end

local function server_checks(client, bufnr)
  -- Hover on a call of a function defined in another file.
  local line, column = find_line(bufnr, 'area(')
  local hover_params = {
    textDocument = { uri = vim.uri_from_bufnr(bufnr) },
    position = { line = line - 1, character = column - 1 },
  }
  -- The workspace is indexed in the background after `initialized`: ask until the answer
  -- knows the callee (or the wait runs out).
  local err, text
  wait_for(function()
    local hover
    err, hover = request(client, 'textDocument/hover', hover_params, bufnr)
    text = type(hover) == 'table' and hover_text(hover.contents) or ''
    if err or text:find('area(', 1, true) then
      return true
    end
    sleep(200)
  end)
  record('hover', err == nil and text:find('area(', 1, true) ~= nil, err and vim.inspect(err) or text)

  -- The status command, which also says whether a model is there. pith loads the model in the
  -- background after `initialized` (`model` is null until then): ask until it names the model
  -- or an error, so that a slow load is not taken for a missing model.
  local status_err, status
  wait_for(function()
    status_err, status = request(client, 'workspace/executeCommand', { command = 'pith.status', arguments = {} }, bufnr)
    local known = function(value)
      return value ~= nil and value ~= vim.NIL
    end
    if status_err or type(status) ~= 'table' or known(status.model) or known(status.error) then
      return true
    end
    sleep(200)
  end)
  report.status = status
  record('status', status_err == nil and type(status) == 'table', status_err and vim.inspect(status_err) or vim.inspect(status))
  -- Only a status that answers and says so skips the model checks; a missing pith.status
  -- fails them instead.
  local no_model = status_err == nil and has_no_model(status)

  -- Code actions on a function.
  local def_line = find_line(bufnr, 'def describe')
  local action_params = {
    textDocument = { uri = vim.uri_from_bufnr(bufnr) },
    range = { start = { line = def_line - 1, character = 4 }, ['end'] = { line = def_line - 1, character = 4 } },
    context = { diagnostics = {} },
  }
  local action_err, actions = request(client, 'textDocument/codeAction', action_params, bufnr)
  local titles = {}
  for _, action in ipairs(type(actions) == 'table' and actions or {}) do
    table.insert(titles, action.title)
  end
  record('code_actions', action_err == nil and #titles > 0, action_err and vim.inspect(action_err) or vim.inspect(titles))

  -- :PithContext at the call site.
  vim.api.nvim_win_set_cursor(0, { line, column - 1 })
  local context_text = ''
  wait_for(function()
    vim.cmd('PithContext')
    context_text = wait_for_output('context') or ''
    return context_text:find('shapes.py', 1, true) or context_text:find('failed:', 1, true) or sleep(200)
  end, math.min(timeout_ms, 10000))
  record('context', context_text:find('shapes.py', 1, true) ~= nil, context_text)
  vim.cmd('only')

  -- Inline completion in an empty function body, the way a user gets it: insert mode, wait.
  local body_line = find_line(bufnr, 'def total_area')
  if no_model then
    io.stderr:write('\n!!! pith.status reports no model: SKIPPING the inline completion and :PithAsk checks !!!\n')
    record('inline_completion', true, 'skipped: pith.status reports no model', true)
    record('inline_completion_accept', true, 'skipped: pith.status reports no model', true)
    record('completion_remembered', true, 'skipped: pith.status reports no model', true)
    record('completion_preempts_explanation', true, 'skipped: pith.status reports no model', true)
  elseif not client.server_capabilities.inlineCompletionProvider then
    record('inline_completion', false, 'the server does not advertise inlineCompletionProvider')
    record('inline_completion_accept', false, 'the server does not advertise inlineCompletionProvider')
    record('completion_remembered', false, 'the server does not advertise inlineCompletionProvider')
    record('completion_preempts_explanation', false, 'the server does not advertise inlineCompletionProvider')
  else
    -- Issue 19: a hover starts the model's explanation of `Circle` (shapes.py); the completion
    -- asked for right after must not wait behind it (pith interrupts the explanation for it).
    local circle_line, circle_column = find_line(bufnr, 'import Circle')
    client:request('textDocument/hover', {
      textDocument = { uri = vim.uri_from_bufnr(bufnr) },
      position = { line = circle_line - 1, character = circle_column + 7 },
    }, function() end, bufnr)
    local namespace = vim.api.nvim_create_namespace('nvim.lsp.inline_completion')
    vim.api.nvim_win_set_cursor(0, { body_line + 1, 0 })
    vim.api.nvim_feedkeys(vim.api.nvim_replace_termcodes('S    ', true, false, true), 'n', false)
    local mark = wait_for(function()
      local marks = vim.api.nvim_buf_get_extmarks(bufnr, namespace, 0, -1, { details = true })
      return marks[1]
    end)
    local shown = ''
    if mark then
      for _, chunk in ipairs(mark[4].virt_text or {}) do
        shown = shown .. chunk[1]
      end
      for _, virt_line in ipairs(mark[4].virt_lines or {}) do
        shown = shown .. '\n'
        for _, chunk in ipairs(virt_line) do
          shown = shown .. chunk[1]
        end
      end
    end
    record('inline_completion', mark ~= nil and vim.trim(shown) ~= '', 'suggestion: ' .. vim.inspect(shown))
    local _, counters = request(client, 'workspace/executeCommand', { command = 'pith.status', arguments = {} }, bufnr)
    if type(counters) == 'table' and counters.preempted ~= nil then
      record('completion_preempts_explanation', (tonumber(counters.preempted) or 0) >= 1, vim.inspect(counters))
    else
      record('completion_preempts_explanation', true, 'skipped: pith.status has no preempted counter', true)
    end
    local before = buffer_text(bufnr)
    vim.api.nvim_feedkeys(vim.api.nvim_replace_termcodes('<C-y>', true, false, true), 'm', false)
    local after = wait_for(function()
      local now = buffer_text(bufnr)
      return now ~= before and now
    end, 5000)
    vim.api.nvim_feedkeys(vim.api.nvim_replace_termcodes('<Esc>', true, false, true), 'n', false)
    sleep(100)
    local first_line = vim.trim(vim.split(shown, '\n', { plain = true })[1] or '')
    record(
      'inline_completion_accept',
      mark ~= nil and after ~= nil and first_line ~= '' and after:find(first_line, 1, true) ~= nil,
      after or 'the buffer did not change on <C-y>'
    )
    -- Neovim runs the item's command after inserting it: pith remembers the accepted completion.
    local remembered
    local deadline = vim.uv.now() + 10000
    while not remembered and vim.uv.now() < deadline do
      local _, listed = request(client, 'workspace/executeCommand', { command = 'pith.memory.list', arguments = {} }, bufnr)
      for _, memory in ipairs(listed and listed.memories or {}) do
        if memory.kind == 'completion' then
          remembered = memory
        end
      end
      if not remembered then
        sleep(200)
      end
    end
    record('completion_remembered', remembered ~= nil, vim.inspect(remembered))
  end

  -- :PithAsk shows the answer in the pith://ask scratch buffer.
  if no_model then
    record('ask', true, 'skipped: pith.status reports no model', true)
  else
    local asked = vim.uv.now()
    vim.cmd('PithAsk What does describe return?')
    local answer = wait_for_output('ask')
    local took = string.format('(%d ms) ', vim.uv.now() - asked)
    if not answer then
      local _, status = request(client, 'workspace/executeCommand', { command = 'pith.status', arguments = {} }, bufnr)
      record('ask', false, took .. 'no answer within the timeout; status ' .. vim.inspect(status))
    else
      record('ask', answer ~= '' and not answer:find('failed:', 1, true), took .. answer)
    end
  end

end

--- A buffer in `dir`, which no root marker covers: its own pith client, started without a root,
--- must still know the other files of the folder (hover on `v.norm()` shows Vector's norm).
local function rootless_checks(dir)
  vim.cmd('edit ' .. vim.fn.fnameescape(dir .. '/report.py'))
  local bufnr = vim.api.nvim_get_current_buf()
  local client = wait_for(function()
    local found = vim.lsp.get_clients({ name = 'pith', bufnr = bufnr })[1]
    return found and found.initialized and found
  end)
  record(
    'rootless_attach',
    client ~= nil and client.root_dir == nil,
    client and ('root ' .. tostring(client.root_dir)) or 'no pith client attached'
  )
  if not client then
    record('rootless_hover', false, 'no client')
    return
  end
  local line, column = find_line(bufnr, 'v.norm(')
  local params = {
    textDocument = { uri = vim.uri_from_bufnr(bufnr) },
    position = { line = line - 1, character = column + 1 },
  }
  local err, text
  wait_for(function()
    local hover
    err, hover = request(client, 'textDocument/hover', params, bufnr)
    text = type(hover) == 'table' and hover_text(hover.contents) or ''
    if err or text:find('def norm', 1, true) then
      return true
    end
    sleep(200)
  end)
  local status_err, status = request(client, 'workspace/executeCommand', { command = 'pith.status', arguments = {} }, bufnr)
  local implied = type(status) == 'table' and status.impliedRoots or {}
  record(
    'rootless_hover',
    err == nil and text:find('def norm(self) -> float', 1, true) ~= nil and text:find('Euclidean length', 1, true) ~= nil,
    (err and vim.inspect(err) or text) .. ' | implied roots: ' .. vim.inspect(status_err or implied)
  )
end

body = function()
  local pith = require('pith')
  pith.setup({ cmd = server_cmd, accept_key = '<C-y>', settings = { completion = { debounce_ms = 0 } } })

  -- Plugin-only checks: no server needed.
  local contract = vim.json.decode(table.concat(vim.fn.readfile(env.PITH_E2E_CONTRACT), '\n'))
  local plugin_commands = vim.tbl_values(pith.commands)
  table.sort(plugin_commands)
  local contract_commands = vim.deepcopy(contract.commands)
  table.sort(contract_commands)
  record(
    'contract_commands',
    vim.deep_equal(plugin_commands, contract_commands),
    'plugin ' .. vim.inspect(plugin_commands) .. ' contract ' .. vim.inspect(contract_commands)
  )
  local plugin_settings = vim.deepcopy(pith.known_settings)
  table.sort(plugin_settings)
  local contract_settings = vim.deepcopy(contract.settings)
  table.sort(contract_settings)
  record(
    'contract_settings',
    vim.deep_equal(plugin_settings, contract_settings),
    'plugin ' .. vim.inspect(plugin_settings) .. ' contract ' .. vim.inspect(contract_settings)
  )
  local unknown = pith.unknown_settings({ model = { path = 'x', pathh = 'y' }, hover = { explain = true } })
  record('unknown_settings_reported', vim.deep_equal(unknown, { 'model.pathh' }), vim.inspect(unknown))

  local missing = {}
  for _, name in ipairs({ 'PithAsk', 'PithExplain', 'PithStatus', 'PithContext', 'PithMemory', 'PithMemoryClear' }) do
    if vim.fn.exists(':' .. name) ~= 2 then
      table.insert(missing, name)
    end
  end
  record('user_commands', #missing == 0, 'missing: ' .. vim.inspect(missing))

  local resolved = vim.lsp.config.pith or {}
  record(
    'lsp_config',
    vim.deep_equal(resolved.filetypes, { 'python', 'rust' })
      and vim.deep_equal(resolved.root_markers, { '.pith', '.git', 'pyproject.toml', 'Cargo.toml' })
      and vim.deep_equal(resolved.cmd, server_cmd)
      and vim.lsp.is_enabled('pith'),
    vim.inspect({ cmd = resolved.cmd, filetypes = resolved.filetypes, root_markers = resolved.root_markers })
  )
  local rtp_config = dofile(vim.api.nvim_get_runtime_file('lsp/pith.lua', false)[1] or '')
  local lspconfig_ok, lspconfig_def = pcall(require, 'lspconfig.configs.pith')
  record(
    'lspconfig_definition',
    type(rtp_config) == 'table'
      and lspconfig_ok
      and type(lspconfig_def.default_config) == 'table'
      and vim.deep_equal(lspconfig_def.default_config.filetypes, { 'python', 'rust' })
      and lspconfig_def.default_config.root_dir(workspace .. '/report.py') == workspace,
    lspconfig_ok and vim.inspect(lspconfig_def.default_config.cmd) or tostring(lspconfig_def)
  )

  -- Attach to a real file of the workspace.
  vim.cmd('edit ' .. vim.fn.fnameescape(workspace .. '/report.py'))
  local bufnr = vim.api.nvim_get_current_buf()
  local started = vim.uv.now()
  local attached = wait_for(function()
    local found = vim.lsp.get_clients({ name = 'pith', bufnr = bufnr })[1]
    if found and found.initialized then
      return found
    end
    -- A server that exits at once leaves no client: no use waiting the whole timeout.
    if not found and vim.uv.now() - started > 3000 then
      return 'gone'
    end
  end)
  local client = type(attached) == 'table' and attached or nil
  record('attach', client ~= nil, client and ('root ' .. tostring(client.root_dir)) or 'no pith client attached (see :LspLog)')
  if client then
    server_checks(client, bufnr)
  end

  -- A file outside any project: Neovim starts pith with no root; pith indexes the file's folder.
  if env.PITH_E2E_ROOTLESS then
    rootless_checks(env.PITH_E2E_ROOTLESS)
  end

  -- :checkhealth pith runs without a Lua error and finds the binary.
  vim.cmd('checkhealth pith')
  local health = buffer_text(vim.api.nvim_get_current_buf())
  record(
    'checkhealth',
    health:find('found ', 1, true) ~= nil and not health:find('Failed to run healthcheck', 1, true),
    health
  )

  finish()
end

vim.defer_fn(function()
  local co = coroutine.create(body)
  local ok, err = coroutine.resume(co)
  if not ok then
    record('script', false, 'error: ' .. tostring(err))
    finish()
  end
end, 0)
