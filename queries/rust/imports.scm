; Imports of Rust, for pith's index.
;
; Captures understood by pith (src/lang/analyze.rs):
;   @import           the whole declaration (its line is the import's line)
;   @import.use_tree  the argument of a `use`: pith flattens groups, globs, `self` and `as`
;                     into one import per name (`use a::{b, c::D as E}` gives `a`/`b` and
;                     `a::c`/`D` as `E`)
;   @import.mod       the name of a `mod foo;` declaration (module `self::foo`)
; Copy this file to $XDG_CONFIG_HOME/pith/queries/rust/imports.scm to change it.

(use_declaration
  argument: (_) @import.use_tree) @import

(mod_item
  name: (identifier) @import.mod
  !body) @import
