//! The language registry: for each supported language its tree-sitter grammar, its queries
//! (compiled in from `queries/<lang>/*.scm`, overridable from the config directory) and its file
//! extensions. Adding a language is a folder of queries plus one entry here.
//!
//! A user may replace a built-in query with `$XDG_CONFIG_HOME/pith/queries/<lang>/<name>.scm`
//! (else `~/.config/pith/queries/...`). Overrides are read once per process; one that does not
//! compile is logged and the built-in query is used instead, so a typo never breaks indexing.

pub(crate) mod analyze;
mod file;
pub(crate) mod incremental;
mod lex;

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use tree_sitter::{Language, Parser, Query, Tree};

pub use analyze::{analyze, content_hash};
pub use file::FileIndex;
pub use incremental::reanalyze;

use crate::syntax::SymbolKind;

/// A supported language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Lang {
    Python,
    Rust,
}

impl Lang {
    /// Every supported language.
    pub const ALL: [Lang; 2] = [Lang::Python, Lang::Rust];

    /// The language of a path, from its extension.
    pub fn from_path(path: &std::path::Path) -> Option<Lang> {
        match path.extension()?.to_str()? {
            "py" | "pyi" => Some(Lang::Python),
            "rs" => Some(Lang::Rust),
            _ => None,
        }
    }

    /// The language of an LSP language id or config name (`python`, `rust`).
    pub fn from_name(name: &str) -> Option<Lang> {
        Lang::ALL.into_iter().find(|lang| lang.name() == name)
    }

    /// The LSP language id / the name used in config files and queries folders.
    pub fn name(self) -> &'static str {
        match self {
            Lang::Python => "python",
            Lang::Rust => "rust",
        }
    }

    /// The tree-sitter grammar.
    pub fn language(self) -> Language {
        match self {
            Lang::Python => tree_sitter_python::LANGUAGE.into(),
            Lang::Rust => tree_sitter_rust::LANGUAGE.into(),
        }
    }

    /// Separator of qualified names (`Session.request`, `Client::send`).
    pub fn path_separator(self) -> &'static str {
        match self {
            Lang::Python => ".",
            Lang::Rust => "::",
        }
    }

    /// Conventional receiver names that are never worth recording as references.
    pub fn receiver_names(self) -> &'static [&'static str] {
        match self {
            Lang::Python => &["self", "cls"],
            // `self` is a keyword node in Rust, never an identifier.
            Lang::Rust => &[],
        }
    }

    /// Which identifiers are references, decided by a tree walk instead of a query (a
    /// catch-all `(identifier) @reference` pattern made the query walk cost as much as the
    /// parse).
    pub(crate) fn reference_rules(self) -> &'static ReferenceRules {
        static PYTHON: OnceLock<ReferenceRules> = OnceLock::new();
        static RUST: OnceLock<ReferenceRules> = OnceLock::new();
        match self {
            Lang::Python => PYTHON.get_or_init(|| {
                ReferenceRules::new(
                    self,
                    &["identifier"],
                    &[
                        ("parameters", None),
                        ("lambda_parameters", None),
                        ("default_parameter", Some("name")),
                        ("typed_parameter", None),
                        ("typed_default_parameter", Some("name")),
                        ("list_splat_pattern", None),
                        ("dictionary_splat_pattern", None),
                        ("keyword_argument", Some("name")),
                    ],
                    &["comment"],
                )
            }),
            Lang::Rust => RUST.get_or_init(|| {
                ReferenceRules::new(
                    self,
                    &["identifier", "type_identifier", "field_identifier"],
                    &[
                        ("parameter", Some("pattern")),
                        ("let_declaration", Some("pattern")),
                        ("closure_parameters", None),
                        ("field_declaration", Some("name")),
                        ("type_parameter", Some("name")),
                    ],
                    &[
                        "string_literal",
                        "raw_string_literal",
                        "char_literal",
                        "line_comment",
                        "block_comment",
                    ],
                )
            }),
        }
    }

    /// The compiled queries of this language (built-in or user overrides).
    pub fn queries(self) -> &'static LangQueries {
        static PYTHON: OnceLock<LangQueries> = OnceLock::new();
        static RUST: OnceLock<LangQueries> = OnceLock::new();
        let cell = match self {
            Lang::Python => &PYTHON,
            Lang::Rust => &RUST,
        };
        cell.get_or_init(|| LangQueries::load(self, user_query_dir().as_deref()))
    }

    fn builtin_query(self, name: QueryName) -> &'static str {
        match (self, name) {
            (Lang::Python, QueryName::Tags) => include_str!("../../queries/python/tags.scm"),
            (Lang::Python, QueryName::Imports) => include_str!("../../queries/python/imports.scm"),
            (Lang::Rust, QueryName::Tags) => include_str!("../../queries/rust/tags.scm"),
            (Lang::Rust, QueryName::Imports) => include_str!("../../queries/rust/imports.scm"),
        }
    }
}

/// The query files a language has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryName {
    /// `tags.scm`: definitions and references.
    Tags,
    /// `imports.scm`: import statements.
    Imports,
}

impl QueryName {
    pub const ALL: [QueryName; 2] = [QueryName::Tags, QueryName::Imports];

    pub fn file_name(self) -> &'static str {
        match self {
            QueryName::Tags => "tags.scm",
            QueryName::Imports => "imports.scm",
        }
    }
}

/// What pith does with a capture of a query, decoded once from its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CaptureRole {
    Definition(SymbolKind),
    Name,
    Reference,
    ReferenceIgnore,
    Import,
    ImportModule,
    ImportName,
    ImportAlias,
    ImportGlob,
    ImportUseTree,
    ImportMod,
    /// A capture pith does not know (helpers of predicates, `@_x`): ignored.
    Other,
}

impl CaptureRole {
    fn from_capture_name(name: &str) -> CaptureRole {
        if let Some(kind) = name.strip_prefix("definition.") {
            return match symbol_kind_from_tag(kind) {
                Some(kind) => CaptureRole::Definition(kind),
                None => CaptureRole::Other,
            };
        }
        match name {
            "name" => CaptureRole::Name,
            "reference" => CaptureRole::Reference,
            "reference.ignore" => CaptureRole::ReferenceIgnore,
            "import" => CaptureRole::Import,
            "import.module" => CaptureRole::ImportModule,
            "import.name" => CaptureRole::ImportName,
            "import.alias" => CaptureRole::ImportAlias,
            "import.glob" => CaptureRole::ImportGlob,
            "import.use_tree" => CaptureRole::ImportUseTree,
            "import.mod" => CaptureRole::ImportMod,
            // Tag queries from elsewhere use `reference.call`, `reference.type`...
            other if other.starts_with("reference.") => CaptureRole::Reference,
            _ => CaptureRole::Other,
        }
    }
}

/// Maps the `<kind>` of a `@definition.<kind>` capture onto a symbol kind. The names of the
/// tree-sitter tags convention (`interface`, `type`) are accepted beside pith's own.
pub fn symbol_kind_from_tag(tag: &str) -> Option<SymbolKind> {
    Some(match tag {
        "module" | "namespace" => SymbolKind::Module,
        "class" => SymbolKind::Class,
        "struct" => SymbolKind::Struct,
        "enum" => SymbolKind::Enum,
        "trait" | "interface" => SymbolKind::Trait,
        "impl" => SymbolKind::Impl,
        "function" => SymbolKind::Function,
        "method" => SymbolKind::Method,
        "constant" => SymbolKind::Constant,
        "field" => SymbolKind::Field,
        "type" | "type_alias" => SymbolKind::TypeAlias,
        "macro" => SymbolKind::Macro,
        _ => return None,
    })
}

/// A compiled query and the role of each of its captures.
#[derive(Debug)]
pub struct CompiledQuery {
    pub query: Query,
    pub(crate) roles: Vec<CaptureRole>,
    /// Where the query came from: `built-in` or the override's path.
    pub origin: String,
    /// The query's source text.
    pub source: String,
    /// Indexed by node kind id: whether some pattern starts with a node of that kind. None
    /// when a pattern starts otherwise (an alternation, a wildcard, a grouping, a supertype):
    /// then the query runs over the whole tree instead of only at those nodes.
    pub(crate) root_kinds: Option<Vec<bool>>,
}

impl CompiledQuery {
    fn compile(lang: Lang, source: &str, origin: String) -> Result<CompiledQuery, String> {
        let query = Query::new(&lang.language(), source).map_err(|error| error.to_string())?;
        let roles = query
            .capture_names()
            .iter()
            .map(|name| CaptureRole::from_capture_name(name))
            .collect();
        let root_kinds = pattern_root_kinds(&lang.language(), &query, source);
        Ok(CompiledQuery {
            query,
            roles,
            origin,
            source: source.to_string(),
            root_kinds,
        })
    }

    pub(crate) fn role(&self, capture_index: u32) -> CaptureRole {
        self.roles
            .get(capture_index as usize)
            .copied()
            .unwrap_or(CaptureRole::Other)
    }
}

/// The node kinds that are references of a language, and the places where such a node is a
/// binding rather than a use: (parent kind, field of the child or any child).
#[derive(Debug, Clone)]
pub(crate) struct ReferenceRules {
    pub(crate) identifier_kinds: Vec<u16>,
    pub(crate) bindings: Vec<(u16, Option<std::num::NonZeroU16>)>,
    /// Node kinds when `self.x = …` defines an instance attribute.
    pub(crate) self_attributes: Option<SelfAttributeKinds>,
    /// Kinds whose subtrees hold no identifier (string literals, comments): not descended.
    pub(crate) opaque_kinds: Vec<u16>,
    /// A string kind that is opaque unless it is an f-string (Python).
    pub(crate) plain_string_kind: Option<u16>,
    /// Expressions whose uses a lexer reads off the text instead of the walk.
    pub(crate) lexed: Option<LexedExpressions>,
}

/// Expression node kinds handed whole to a lexer, which appends the byte ranges of the
/// identifiers in a range of the text that are uses.
#[derive(Clone)]
pub(crate) struct LexedExpressions {
    /// Indexed by node kind id.
    kinds: Vec<bool>,
    pub(crate) uses: UsesLexer,
}

/// Appends the byte ranges of the uses in a range of the text; false (nothing appended) when
/// that expression must be walked after all.
pub(crate) type UsesLexer =
    fn(&str, std::ops::Range<usize>, &mut Vec<std::ops::Range<usize>>) -> bool;

impl std::fmt::Debug for LexedExpressions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LexedExpressions").finish_non_exhaustive()
    }
}

/// Rust's expression kinds handed to the lexer, which declines those holding a block or a
/// closure (where `let`, patterns and parameters bind).
const RUST_LEXED_KINDS: &[&str] = &[
    "call_expression",
    "arguments",
    "field_expression",
    "binary_expression",
    "unary_expression",
    "reference_expression",
    "try_expression",
    "index_expression",
    "tuple_expression",
    "array_expression",
    "parenthesized_expression",
    "type_cast_expression",
    "range_expression",
    "await_expression",
    "return_expression",
    "macro_invocation",
    "scoped_identifier",
    "generic_function",
];

/// Python's expression kinds that hold no definition, no import and no binding the lexer
/// cannot see (keyword arguments and lambda parameters it can).
const PYTHON_LEXED_KINDS: &[&str] = &[
    "call",
    "argument_list",
    "attribute",
    "subscript",
    "slice",
    "binary_operator",
    "boolean_operator",
    "comparison_operator",
    "not_operator",
    "unary_operator",
    "conditional_expression",
    "parenthesized_expression",
    "named_expression",
    "await",
    "lambda",
    "yield",
    "list",
    "tuple",
    "set",
    "dictionary",
    "expression_list",
    "list_splat",
    "dictionary_splat",
    "list_comprehension",
    "set_comprehension",
    "dictionary_comprehension",
    "generator_expression",
    "string",
    "concatenated_string",
];

/// The node kinds of `self.x = …` and `self.x, self.y = …` (Python).
#[derive(Debug, Clone, Copy)]
pub(crate) struct SelfAttributeKinds {
    pub(crate) attribute: u16,
    pub(crate) assignment: u16,
    /// Lists of targets an attribute may sit in, directly on the left of an assignment.
    pub(crate) target_lists: [u16; 2],
}

impl ReferenceRules {
    fn new(
        lang: Lang,
        identifiers: &[&str],
        bindings: &[(&str, Option<&str>)],
        opaque: &[&str],
    ) -> Self {
        let language = lang.language();
        let kind = |name: &str| language.id_for_node_kind(name, true);
        ReferenceRules {
            self_attributes: (lang == Lang::Python).then(|| SelfAttributeKinds {
                attribute: kind("attribute"),
                assignment: kind("assignment"),
                target_lists: [kind("pattern_list"), kind("tuple_pattern")],
            }),
            identifier_kinds: identifiers.iter().map(|name| kind(name)).collect(),
            opaque_kinds: opaque.iter().map(|name| kind(name)).collect(),
            plain_string_kind: (lang == Lang::Python).then(|| kind("string")),
            lexed: {
                let (names, uses): (&[&str], UsesLexer) = match lang {
                    Lang::Python => (PYTHON_LEXED_KINDS, lex::python_uses),
                    Lang::Rust => (RUST_LEXED_KINDS, lex::rust_uses),
                };
                let mut kinds = vec![false; language.node_kind_count()];
                // (Id 0 is what an unknown name gets.)
                for id in names.iter().map(|name| usize::from(kind(name))) {
                    if let Some(lexed) = kinds.get_mut(id).filter(|_| id != 0) {
                        *lexed = true;
                    }
                }
                Some(LexedExpressions { kinds, uses })
            },
            bindings: bindings
                .iter()
                .map(|(parent, field)| {
                    (
                        kind(parent),
                        field.and_then(|field| language.field_id_for_name(field)),
                    )
                })
                .collect(),
        }
    }

    pub(crate) fn is_identifier(&self, kind: u16) -> bool {
        self.identifier_kinds.contains(&kind)
    }

    /// Whether `node` (of `kind`) has no identifier below it: a string literal without
    /// interpolation or a comment. Skipping them saves a tenth of the walk on typical Python.
    pub(crate) fn is_opaque(&self, kind: u16, node: tree_sitter::Node, text: &str) -> bool {
        if self.opaque_kinds.contains(&kind) {
            return true;
        }
        self.plain_string_kind == Some(kind) && {
            let prefix = text
                .get(node.start_byte()..)
                .unwrap_or("")
                .split(['"', '\''])
                .next()
                .unwrap_or("");
            !prefix.contains(['f', 'F'])
        }
    }

    /// The lexer for a node of `kind` under a `parent` of the kind given, if it is an
    /// expression to lex rather than walk. An attribute on the left of an assignment is
    /// walked: it may define an instance attribute.
    pub(crate) fn lexer_for(&self, kind: u16, parent: u16) -> Option<UsesLexer> {
        let lexed = self.lexed.as_ref()?;
        if !lexed.kinds.get(usize::from(kind)).copied().unwrap_or(false) {
            return None;
        }
        if let Some(targets) = self.self_attributes
            && kind == targets.attribute
            && (parent == targets.assignment || targets.target_lists.contains(&parent))
        {
            return None;
        }
        Some(lexed.uses)
    }

    /// Whether an identifier under a `parent` node, in `field`, binds a name.
    pub(crate) fn is_binding(&self, parent: u16, field: Option<std::num::NonZeroU16>) -> bool {
        self.bindings
            .iter()
            .any(|&(kind, wanted)| kind == parent && (wanted.is_none() || wanted == field))
    }
}

/// For each node kind id, whether a pattern of `query` starts with a node of that kind; None
/// unless every pattern starts with a plain, visible, named node kind (`(class_definition`).
fn pattern_root_kinds(language: &Language, query: &Query, source: &str) -> Option<Vec<bool>> {
    let count = language.node_kind_count();
    let mut kinds = vec![false; count];
    for pattern in 0..query.pattern_count() {
        let rest = source.get(query.start_byte_for_pattern(pattern)..)?;
        let rest = rest.trim_start().strip_prefix('(')?.trim_start();
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        let name = &rest[..end];
        if name.is_empty() || name.starts_with('_') {
            return None;
        }
        let mut any = false;
        for (id, is_root) in kinds.iter_mut().enumerate() {
            let id = u16::try_from(id).ok()?;
            if language.node_kind_for_id(id) == Some(name) && language.node_kind_is_named(id) {
                if language.node_kind_is_supertype(id) || !language.node_kind_is_visible(id) {
                    return None;
                }
                *is_root = true;
                any = true;
            }
        }
        if !any {
            return None;
        }
    }
    Some(kinds)
}

/// The queries of one language.
#[derive(Debug)]
pub struct LangQueries {
    pub tags: CompiledQuery,
    pub imports: CompiledQuery,
    /// `tags` and `imports` in one query, so that analysis walks the tree once (each query
    /// walk costs about as much as a whole-tree cursor walk; their capture names differ).
    pub combined: CompiledQuery,
}

impl LangQueries {
    /// Compiles the queries of `lang`, preferring `<user_dir>/<lang>/<name>.scm` when it exists
    /// and compiles.
    pub fn load(lang: Lang, user_dir: Option<&Path>) -> LangQueries {
        let load_one = |name: QueryName| -> CompiledQuery {
            if let Some(dir) = user_dir {
                let path = dir.join(lang.name()).join(name.file_name());
                match std::fs::read_to_string(&path) {
                    Ok(source) => {
                        match CompiledQuery::compile(lang, &source, path.display().to_string()) {
                            Ok(query) => {
                                tracing::info!(path = %path.display(), "using query override");
                                return query;
                            }
                            Err(error) => tracing::warn!(
                                path = %path.display(),
                                %error,
                                "query override does not compile; using the built-in query"
                            ),
                        }
                    }
                    Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
                    Err(error) => tracing::warn!(
                        path = %path.display(),
                        %error,
                        "cannot read query override; using the built-in query"
                    ),
                }
            }
            match CompiledQuery::compile(lang, lang.builtin_query(name), "built-in".into()) {
                Ok(query) => query,
                // The built-in queries are compiled in and covered by tests: failing here is a
                // bug in pith, not bad input.
                Err(error) => panic!(
                    "built-in query {}/{} does not compile: {error}",
                    lang.name(),
                    name.file_name()
                ),
            }
        };
        let tags = load_one(QueryName::Tags);
        let imports = load_one(QueryName::Imports);
        let source = format!("{}\n{}", tags.source, imports.source);
        let origin = format!("{} + {}", tags.origin, imports.origin);
        let combined = match CompiledQuery::compile(lang, &source, origin) {
            Ok(combined) => combined,
            // Both parts compiled alone; together they can only fail on a capture name used
            // with different meanings, which the parts' own roles then disambiguate badly.
            Err(error) => panic!(
                "tags and imports queries of {} do not combine: {error}",
                lang.name()
            ),
        };
        LangQueries {
            tags,
            imports,
            combined,
        }
    }
}

/// `$XDG_CONFIG_HOME/pith/queries`, else `~/.config/pith/queries`.
pub fn user_query_dir() -> Option<PathBuf> {
    Some(crate::dirs::config_dir()?.join("queries"))
}

thread_local! {
    /// Parsers are not `Sync`; one per thread and language, reused across files.
    static PARSERS: RefCell<Vec<(Lang, Parser)>> = const { RefCell::new(Vec::new()) };
}

/// CPU time a parse may take: a base plus a share per megabyte of text (a healthy parse needs
/// well under a tenth of that on a Raspberry Pi 5). Error recovery can be far slower than
/// linear (a broken string on a million-character line took five seconds), and every request
/// that needs the index waits on a parse: past the budget, the file keeps its previous index
/// entry. CPU time, not wall time, so that a busy machine does not turn healthy parses away.
pub fn parse_budget(text_bytes: usize) -> std::time::Duration {
    std::time::Duration::from_millis(500 + (text_bytes as u64 >> 20) * 500)
}

/// CPU time this thread has used (Linux and macOS: `CLOCK_THREAD_CPUTIME_ID`).
fn thread_cpu_time() -> std::time::Duration {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid, writable timespec; the clock id is a constant the OS knows.
    let status = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    if status != 0 {
        return std::time::Duration::ZERO;
    }
    std::time::Duration::new(
        now.tv_sec.max(0) as u64,
        now.tv_nsec.clamp(0, 999_999_999) as u32,
    )
}

/// Parses `text` as `lang`. With `old_tree` (already `edit`ed to match `text`), parsing is
/// incremental. Returns None if tree-sitter gives up or the parse exceeds [`parse_budget`].
pub fn parse(lang: Lang, text: &str, old_tree: Option<&Tree>) -> Option<Tree> {
    PARSERS.with(|parsers| {
        let mut parsers = parsers.borrow_mut();
        let position = match parsers.iter().position(|(l, _)| *l == lang) {
            Some(position) => position,
            None => {
                let mut parser = Parser::new();
                parser.set_language(&lang.language()).ok()?;
                parsers.push((lang, parser));
                parsers.len() - 1
            }
        };
        let parser = &mut parsers[position].1;
        let budget = parse_budget(text.len());
        let started = thread_cpu_time();
        let mut within_budget = |_: &tree_sitter::ParseState| {
            if thread_cpu_time().saturating_sub(started) > budget {
                std::ops::ControlFlow::Break(())
            } else {
                std::ops::ControlFlow::Continue(())
            }
        };
        let options = tree_sitter::ParseOptions::new().progress_callback(&mut within_budget);
        let bytes = text.as_bytes();
        let tree = parser.parse_with_options(
            &mut |offset, _| bytes.get(offset..).unwrap_or_default(),
            old_tree,
            Some(options),
        );
        if tree.is_none() {
            // An aborted parse would otherwise resume on the next call, whatever its text.
            parser.reset();
            tracing::warn!(
                bytes = text.len(),
                "parse abandoned after {budget:?} of CPU; the file keeps its previous index entry"
            );
        }
        tree
    })
}

#[cfg(test)]
mod tests;
