--- pith as an nvim-lspconfig server definition, so `require('lspconfig').pith.setup({})` works
--- with this plugin on 'runtimepath' (nvim-lspconfig looks up `lspconfig.configs.<name>`).
local pith = require('pith')
local config = pith.lsp_config()

return {
  default_config = {
    cmd = config.cmd,
    filetypes = config.filetypes,
    -- Under no root marker: no root (single-file mode). pith then indexes the file's folder
    -- itself, bounded and never $HOME, where the folder as a root would be scanned whole.
    root_dir = function(fname)
      return vim.fs.root(fname, config.root_markers)
    end,
    single_file_support = true,
    init_options = config.init_options,
    settings = config.settings,
    on_attach = config.on_attach,
  },
  docs = {
    description = [[
pith: a language server that puts a small local LLM to work on your own codebase
(inline completion, hover explanations, code actions, `pith.ask`).

Install the binary and its default model with `scripts/setup.sh`, then:
```lua
require('lspconfig').pith.setup({ init_options = { model = { threads = 4 } } })
```
]],
  },
}
