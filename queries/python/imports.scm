; Imports of Python, for pith's index. One match per imported name.
;
; Captures understood by pith (src/lang/analyze.rs):
;   @import         the whole statement (its line is the import's line)
;   @import.module  the module as written: `os.path`, `.models`, `..`
;   @import.name    the imported name of `from m import name`
;   @import.alias   the `as` alias
;   @import.glob    `from m import *`
; Copy this file to $XDG_CONFIG_HOME/pith/queries/python/imports.scm to change it.

(import_statement
  name: (dotted_name) @import.module) @import

(import_statement
  name: (aliased_import
    name: (dotted_name) @import.module
    alias: (identifier) @import.alias)) @import

(import_from_statement
  module_name: (_) @import.module
  name: (dotted_name) @import.name) @import

(import_from_statement
  module_name: (_) @import.module
  name: (aliased_import
    name: (dotted_name) @import.name
    alias: (identifier) @import.alias)) @import

(import_from_statement
  module_name: (_) @import.module
  (wildcard_import) @import.glob) @import
