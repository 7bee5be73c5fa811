--- pith for Neovim >= 0.11's `lsp/` runtime convention: with this plugin on 'runtimepath',
--- `vim.lsp.enable('pith')` alone starts pith (`require('pith').setup()` also does it and adds
--- options).
return require('pith').lsp_config()
