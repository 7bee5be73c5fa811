; Definitions and references of Rust, for pith's index.
;
; Captures understood by pith (src/lang/analyze.rs):
;   @definition.<kind>  the whole definition; kind is one of class, struct, enum, trait,
;                       interface, impl, function, method, constant, field, module, type,
;                       macro. A function inside an impl or trait becomes a method.
;   @name               the identifier naming that definition (same pattern); for an impl,
;                       the implementing type without generics.
;   @reference          an extra identifier to record as used.
;   @reference.ignore   an identifier that is not a use.
; pith finds references itself with a tree walk (every identifier but bindings: parameters,
; `let` patterns, keyword names; see `reference_rules` in src/lang/mod.rs), which costs a
; fraction of a catch-all `(identifier) @reference` pattern; the two captures above add to it.
; Copy this file to $XDG_CONFIG_HOME/pith/queries/rust/tags.scm to change it.

(struct_item
  name: (type_identifier) @name) @definition.struct

(union_item
  name: (type_identifier) @name) @definition.struct

(enum_item
  name: (type_identifier) @name) @definition.enum

(enum_variant
  name: (identifier) @name) @definition.constant

(field_declaration_list
  (field_declaration
    name: (field_identifier) @name) @definition.field)

(type_item
  name: (type_identifier) @name) @definition.type

(associated_type
  name: (type_identifier) @name) @definition.type

(trait_item
  name: (type_identifier) @name) @definition.trait

(impl_item
  type: [
    (type_identifier) @name
    (generic_type type: (type_identifier) @name)
    (scoped_type_identifier name: (type_identifier) @name)
    (generic_type type: (scoped_type_identifier name: (type_identifier) @name))
  ]) @definition.impl

(function_item
  name: (identifier) @name) @definition.function

(function_signature_item
  name: (identifier) @name) @definition.function

(const_item
  name: (identifier) @name) @definition.constant

(static_item
  name: (identifier) @name) @definition.constant

(mod_item
  name: (identifier) @name) @definition.module

(macro_definition
  name: (identifier) @name) @definition.macro

