; Definitions and references of Python, for pith's index.
;
; Captures understood by pith (src/lang/analyze.rs):
;   @definition.<kind>  the whole definition; kind is one of class, struct, enum, trait,
;                       interface, impl, function, method, constant, field, module, type,
;                       macro. A function nested directly in a class becomes a method.
;   @name               the identifier naming that definition (same pattern).
;   @reference          an identifier used, not defined.
;   @reference.ignore   an identifier that is not a use (parameters, keyword names...).
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

(identifier) @reference

(parameters (identifier) @reference.ignore)
(lambda_parameters (identifier) @reference.ignore)
(default_parameter name: (identifier) @reference.ignore)
(typed_parameter (identifier) @reference.ignore)
(typed_default_parameter name: (identifier) @reference.ignore)
(list_splat_pattern (identifier) @reference.ignore)
(dictionary_splat_pattern (identifier) @reference.ignore)
(keyword_argument name: (identifier) @reference.ignore)
((identifier) @reference.ignore
  (#any-of? @reference.ignore "self" "cls"))
