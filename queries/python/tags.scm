; Definitions and references of Python, for pith's index.
;
; Captures understood by pith (src/lang/analyze.rs):
;   @definition.<kind>  the whole definition; kind is one of class, struct, enum, trait,
;                       interface, impl, function, method, constant, field, module, type,
;                       macro. A function nested directly in a class becomes a method.
;   @name               the identifier naming that definition (same pattern).
;   @reference          an extra identifier to record as used.
;   @reference.ignore   an identifier that is not a use.
; pith finds references itself with a tree walk (every identifier but bindings: parameters,
; `let` patterns, keyword names; see `reference_rules` in src/lang/mod.rs), which costs a
; fraction of a catch-all `(identifier) @reference` pattern; the two captures above add to it.
; (`self`, `cls` are never references.)
; Copy this file to $XDG_CONFIG_HOME/pith/queries/python/tags.scm to change it.

(class_definition
  name: (identifier) @name) @definition.class

(function_definition
  name: (identifier) @name) @definition.function

; Module-level assignments: `X = 1`, `X: int = 1`.
(module
  (expression_statement
    (assignment
      left: (identifier) @name) @definition.constant))

; Class attributes: `name: str = ""` in a class body.
(class_definition
  body: (block
    (expression_statement
      (assignment
        left: (identifier) @name) @definition.field)))

; Instance attributes (`self.name = …` in a method) are found by pith from the assignment
; targets the tree walk meets, at no extra walk (src/lang/analyze.rs, `instance_attributes`).
