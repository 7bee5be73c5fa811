//! Session memory: what the user asked and accepted in a workspace (questions, code actions,
//! completions, explanations), kept in SQLite so that later prompts can recall it, plus the
//! persisted cache of hover explanations keyed by the content hash of the symbol.
//!
//! One database per workspace under the cache dir (`$XDG_CACHE_HOME/pith/memory/<hash>.sqlite`,
//! the hash of the root path), so nothing is written into the user's repository. WAL with
//! `synchronous=NORMAL`: a crashed or killed process loses nothing it committed. Recall ranks by
//! shared symbols and files and by FTS5 lexical similarity; memories whose code has since
//! changed are marked stale and ranked down. A corrupt database is moved aside
//! (`.corrupt-<timestamp>`) with a logged message; an unwritable one turns memory off
//! ([`MemoryStore::open_or_off`]) without stopping anything else.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// What produced a memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MemoryKind {
    Ask,
    CodeAction,
    Completion,
    Explanation,
}

impl MemoryKind {
    pub fn name(self) -> &'static str {
        match self {
            MemoryKind::Ask => "ask",
            MemoryKind::CodeAction => "code_action",
            MemoryKind::Completion => "completion",
            MemoryKind::Explanation => "explanation",
        }
    }

    fn parse(name: &str) -> Option<Self> {
        [
            MemoryKind::Ask,
            MemoryKind::CodeAction,
            MemoryKind::Completion,
            MemoryKind::Explanation,
        ]
        .into_iter()
        .find(|k| k.name() == name)
    }
}

/// A memory to store.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NewMemory {
    pub kind: Option<MemoryKind>,
    pub question: String,
    pub answer: String,
    /// Workspace-relative paths the exchange concerned.
    pub files: Vec<String>,
    /// Symbol names the exchange concerned.
    pub symbols: Vec<String>,
    /// Content hashes of the code it concerned (see [`content_hash`]).
    pub code_hashes: Vec<String>,
}

/// A stored memory.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Memory {
    pub id: i64,
    pub kind: MemoryKind,
    pub question: String,
    pub answer: String,
    pub files: Vec<String>,
    pub symbols: Vec<String>,
    pub code_hashes: Vec<String>,
    /// Unix seconds.
    pub created_at: i64,
    /// The code it concerned has changed since.
    pub stale: bool,
    /// Recall score (0 outside `recall`).
    pub score: f64,
}

#[derive(Debug, thiserror::Error)]
pub enum MemoryError {
    #[error("memory database {path}: {source}")]
    Sqlite {
        path: String,
        source: rusqlite::Error,
    },
    #[error("memory directory {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("no cache directory: neither XDG_CACHE_HOME nor HOME is set")]
    NoCacheDir,
}

/// Hex SHA-256 of a piece of code, the key of stale marking and of the explanation cache.
pub fn content_hash(code: &str) -> String {
    hex::encode(Sha256::digest(code.as_bytes()))
}

/// The database file of a workspace root.
pub fn database_path(root: &Path) -> Result<PathBuf, MemoryError> {
    let root = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
    let digest = Sha256::digest(root.to_string_lossy().as_bytes());
    let name = format!("{}.sqlite", &hex::encode(digest)[..16]);
    Ok(crate::dirs::cache_dir()
        .ok_or(MemoryError::NoCacheDir)?
        .join("memory")
        .join(name))
}

/// The session memory of one workspace.
pub struct MemoryStore {
    connection: Connection,
    path: PathBuf,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore")
            .field("path", &self.path)
            .finish()
    }
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS memories (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    question TEXT NOT NULL,
    answer TEXT NOT NULL,
    files TEXT NOT NULL,
    symbols TEXT NOT NULL,
    code_hashes TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    stale INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS memory_keys (
    memory_id INTEGER NOT NULL REFERENCES memories(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    key TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS memory_keys_key ON memory_keys(kind, key);
CREATE INDEX IF NOT EXISTS memory_keys_memory ON memory_keys(memory_id);
CREATE VIRTUAL TABLE IF NOT EXISTS memories_fts USING fts5(question, answer, symbols);
CREATE TABLE IF NOT EXISTS explanations (
    hash TEXT PRIMARY KEY,
    text TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
";

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

impl MemoryStore {
    /// Opens the memory of the workspace at `root`.
    pub fn open(root: &Path) -> Result<Self, MemoryError> {
        Self::open_at(&database_path(root)?)
    }

    /// Opens the memory of `root`, or logs why it cannot and returns None: memory is then off
    /// and every other feature keeps working.
    pub fn open_or_off(root: &Path) -> Option<Self> {
        match Self::open(root) {
            Ok(store) => Some(store),
            Err(error) => {
                tracing::warn!("session memory is off: {error}");
                None
            }
        }
    }

    /// Opens (creating) the database at `path`. A file that is not a healthy database is moved
    /// aside to `<path>.corrupt-<unix time>` and a fresh one is created.
    pub fn open_at(path: &Path) -> Result<Self, MemoryError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| MemoryError::Io {
                path: dir.display().to_string(),
                source,
            })?;
        }
        match Self::try_open(path) {
            Ok(store) => Ok(store),
            Err(error) if is_corruption(&error) && path.exists() => {
                let aside = PathBuf::from(format!("{}.corrupt-{}", path.display(), now()));
                tracing::error!(
                    "memory database {} is corrupt ({error}); moved it to {} and started a new one",
                    path.display(),
                    aside.display()
                );
                std::fs::rename(path, &aside).map_err(|source| MemoryError::Io {
                    path: path.display().to_string(),
                    source,
                })?;
                for suffix in ["-wal", "-shm"] {
                    let side = PathBuf::from(format!("{}{suffix}", path.display()));
                    let _ = std::fs::rename(&side, format!("{}{suffix}", aside.display()));
                }
                Self::try_open(path).map_err(|source| MemoryError::Sqlite {
                    path: path.display().to_string(),
                    source,
                })
            }
            Err(source) => Err(MemoryError::Sqlite {
                path: path.display().to_string(),
                source,
            }),
        }
    }

    fn try_open(path: &Path) -> Result<Self, rusqlite::Error> {
        let connection = Connection::open(path)?;
        connection.busy_timeout(std::time::Duration::from_secs(2))?;
        let check: String = connection.query_row("PRAGMA quick_check", [], |row| row.get(0))?;
        if check != "ok" {
            return Err(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CORRUPT),
                Some(check),
            ));
        }
        connection.pragma_update(None, "journal_mode", "WAL")?;
        connection.pragma_update(None, "synchronous", "NORMAL")?;
        connection.pragma_update(None, "foreign_keys", "ON")?;
        connection.execute_batch(SCHEMA)?;
        Ok(Self {
            connection,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn sqlite_error(&self, source: rusqlite::Error) -> MemoryError {
        MemoryError::Sqlite {
            path: self.path.display().to_string(),
            source,
        }
    }

    /// Stores a memory in one transaction; returns its id.
    pub fn remember(&mut self, memory: &NewMemory) -> Result<i64, MemoryError> {
        let result = (|| {
            let tx = self.connection.transaction()?;
            let kind = memory.kind.unwrap_or(MemoryKind::Ask).name();
            let json = |v: &Vec<String>| serde_json::to_string(v).unwrap_or_else(|_| "[]".into());
            tx.execute(
                "INSERT INTO memories (kind, question, answer, files, symbols, code_hashes, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    kind,
                    memory.question,
                    memory.answer,
                    json(&memory.files),
                    json(&memory.symbols),
                    json(&memory.code_hashes),
                    now()
                ],
            )?;
            let id = tx.last_insert_rowid();
            tx.execute(
                "INSERT INTO memories_fts (rowid, question, answer, symbols) VALUES (?1, ?2, ?3, ?4)",
                params![id, memory.question, memory.answer, memory.symbols.join(" ")],
            )?;
            let keys = [
                ("file", &memory.files),
                ("symbol", &memory.symbols),
                ("hash", &memory.code_hashes),
            ];
            for (key_kind, values) in keys {
                for value in values {
                    tx.execute(
                        "INSERT INTO memory_keys (memory_id, kind, key) VALUES (?1, ?2, ?3)",
                        params![id, key_kind, value],
                    )?;
                }
            }
            tx.commit()?;
            Ok(id)
        })();
        result.map_err(|e| self.sqlite_error(e))
    }

    fn load(&self, ids: &[i64]) -> Result<Vec<Memory>, rusqlite::Error> {
        let mut statement = self.connection.prepare_cached(
            "SELECT id, kind, question, answer, files, symbols, code_hashes, created_at, stale
             FROM memories WHERE id = ?1",
        )?;
        let mut out = Vec::new();
        for id in ids {
            let memory = statement
                .query_row([id], |row| {
                    let list = |i: usize| -> rusqlite::Result<Vec<String>> {
                        let text: String = row.get(i)?;
                        Ok(serde_json::from_str(&text).unwrap_or_default())
                    };
                    let kind: String = row.get(1)?;
                    Ok(Memory {
                        id: row.get(0)?,
                        kind: MemoryKind::parse(&kind).unwrap_or(MemoryKind::Ask),
                        question: row.get(2)?,
                        answer: row.get(3)?,
                        files: list(4)?,
                        symbols: list(5)?,
                        code_hashes: list(6)?,
                        created_at: row.get(7)?,
                        stale: row.get::<_, i64>(8)? != 0,
                        score: 0.0,
                    })
                })
                .optional()?;
            out.extend(memory);
        }
        Ok(out)
    }

    /// The most recent memories first.
    pub fn list(&self, limit: usize) -> Result<Vec<Memory>, MemoryError> {
        let result = (|| {
            let mut statement = self
                .connection
                .prepare("SELECT id FROM memories ORDER BY created_at DESC, id DESC LIMIT ?1")?;
            let ids = statement
                .query_map([limit as i64], |row| row.get(0))?
                .collect::<Result<Vec<i64>, _>>()?;
            self.load(&ids)
        })();
        result.map_err(|e| self.sqlite_error(e))
    }

    /// FTS5 match of `query` with bm25 relevance (higher better), best first.
    fn lexical(&self, query: &str, limit: usize) -> Result<Vec<(i64, f64)>, rusqlite::Error> {
        let Some(expression) = fts_expression(query) else {
            return Ok(Vec::new());
        };
        let mut statement = self.connection.prepare(
            "SELECT rowid, bm25(memories_fts) FROM memories_fts WHERE memories_fts MATCH ?1
             ORDER BY bm25(memories_fts) LIMIT ?2",
        )?;
        statement
            .query_map(params![expression, limit as i64], |row| {
                Ok((row.get::<_, i64>(0)?, -row.get::<_, f64>(1)?))
            })?
            .collect()
    }

    /// Memories whose text matches `query`, best first.
    pub fn search(&self, query: &str, limit: usize) -> Result<Vec<Memory>, MemoryError> {
        let result = (|| {
            let hits = self.lexical(query, limit)?;
            let ids: Vec<i64> = hits.iter().map(|(id, _)| *id).collect();
            let mut memories = self.load(&ids)?;
            for (memory, (_, score)) in memories.iter_mut().zip(&hits) {
                memory.score = *score;
            }
            Ok(memories)
        })();
        result.map_err(|e| self.sqlite_error(e))
    }

    /// The memories most relevant to a request: sharing its symbols (strongest) or files, or
    /// lexically similar to `query`. Stale memories are ranked down, not dropped.
    pub fn recall(
        &self,
        query: &str,
        files: &[String],
        symbols: &[String],
        limit: usize,
    ) -> Result<Vec<Memory>, MemoryError> {
        let result = (|| {
            let mut scores: HashMap<i64, f64> = HashMap::new();
            let mut keyed: HashSet<i64> = HashSet::new();
            let hits = self.lexical(query, 50)?;
            let best = hits.iter().map(|(_, s)| *s).fold(0.0_f64, f64::max);
            for (id, score) in hits {
                if best > 0.0 {
                    *scores.entry(id).or_default() += score / best;
                }
            }
            let mut statement = self.connection.prepare_cached(
                "SELECT DISTINCT memory_id FROM memory_keys WHERE kind = ?1 AND key = ?2",
            )?;
            for (kind, keys, weight) in [("symbol", symbols, 2.0), ("file", files, 1.0)] {
                for key in keys {
                    let ids = statement
                        .query_map(params![kind, key], |row| row.get::<_, i64>(0))?
                        .collect::<Result<Vec<_>, _>>()?;
                    for id in ids {
                        *scores.entry(id).or_default() += weight;
                        keyed.insert(id);
                    }
                }
            }
            let ids: Vec<i64> = scores.keys().copied().collect();
            let mut memories = self.load(&ids)?;
            // A memory found by words alone must share most of the question's words: recalled
            // for one shared word, an unrelated answer is what a small model copies.
            memories.retain(|m| keyed.contains(&m.id) || shares_most_words(query, &m.question));
            for memory in &mut memories {
                let score = scores.get(&memory.id).copied().unwrap_or(0.0);
                memory.score = if memory.stale { score * 0.25 } else { score };
            }
            memories.sort_by(|a, b| {
                b.score
                    .total_cmp(&a.score)
                    .then(b.created_at.cmp(&a.created_at))
                    .then(b.id.cmp(&a.id))
            });
            memories.truncate(limit);
            Ok(memories)
        })();
        result.map_err(|e| self.sqlite_error(e))
    }

    /// Marks stale every memory that concerned code with one of these content hashes (code that
    /// changed since). Returns how many were marked.
    pub fn mark_stale(&self, changed_hashes: &[String]) -> Result<usize, MemoryError> {
        let mut marked = 0;
        for hash in changed_hashes {
            marked += self
                .connection
                .execute(
                    "UPDATE memories SET stale = 1 WHERE stale = 0 AND id IN
                     (SELECT memory_id FROM memory_keys WHERE kind = 'hash' AND key = ?1)",
                    [hash],
                )
                .map_err(|e| self.sqlite_error(e))?;
        }
        Ok(marked)
    }

    /// Marks stale the memories about `file` whose code is gone from it: none of their content
    /// hashes is among `present` (the hashes of the file's code as it is now). Memories with no
    /// hashes are left alone. Returns how many were marked.
    pub fn mark_stale_in_file(
        &self,
        file: &str,
        present: &std::collections::HashSet<String>,
    ) -> Result<usize, MemoryError> {
        let result = (|| {
            let ids: Vec<i64> = self
                .connection
                .prepare_cached(
                    "SELECT DISTINCT memory_id FROM memory_keys WHERE kind = 'file' AND key = ?1",
                )?
                .query_map([file], |row| row.get(0))?
                .collect::<Result<_, _>>()?;
            let mut gone = Vec::new();
            for memory in self.load(&ids)? {
                if !memory.stale
                    && !memory.code_hashes.is_empty()
                    && !memory.code_hashes.iter().any(|h| present.contains(h))
                {
                    gone.push(memory.id);
                }
            }
            for id in &gone {
                self.connection
                    .execute("UPDATE memories SET stale = 1 WHERE id = ?1", [id])?;
            }
            Ok(gone.len())
        })();
        result.map_err(|e| self.sqlite_error(e))
    }

    /// Deletes one memory; false if there was none with this id.
    pub fn delete(&mut self, id: i64) -> Result<bool, MemoryError> {
        let result = (|| {
            let tx = self.connection.transaction()?;
            tx.execute("DELETE FROM memory_keys WHERE memory_id = ?1", [id])?;
            tx.execute("DELETE FROM memories_fts WHERE rowid = ?1", [id])?;
            let deleted = tx.execute("DELETE FROM memories WHERE id = ?1", [id])?;
            tx.commit()?;
            Ok(deleted > 0)
        })();
        result.map_err(|e| self.sqlite_error(e))
    }

    /// Deletes every memory and cached explanation; returns how many memories there were.
    pub fn clear(&mut self) -> Result<usize, MemoryError> {
        let result = (|| {
            let tx = self.connection.transaction()?;
            tx.execute("DELETE FROM memory_keys", [])?;
            tx.execute("DELETE FROM memories_fts", [])?;
            tx.execute("DELETE FROM explanations", [])?;
            let deleted = tx.execute("DELETE FROM memories", [])?;
            tx.commit()?;
            Ok(deleted)
        })();
        result.map_err(|e| self.sqlite_error(e))
    }

    /// The cached explanation of the code with this content hash.
    pub fn explanation_get(&self, hash: &str) -> Result<Option<String>, MemoryError> {
        self.connection
            .query_row(
                "SELECT text FROM explanations WHERE hash = ?1",
                [hash],
                |row| row.get(0),
            )
            .optional()
            .map_err(|e| self.sqlite_error(e))
    }

    pub fn explanation_put(&self, hash: &str, text: &str) -> Result<(), MemoryError> {
        self.connection
            .execute(
                "INSERT INTO explanations (hash, text, created_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT(hash) DO UPDATE SET text = excluded.text, created_at = excluded.created_at",
                params![hash, text, now()],
            )
            .map(|_| ())
            .map_err(|e| self.sqlite_error(e))
    }
}

fn is_corruption(error: &rusqlite::Error) -> bool {
    matches!(
        error.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase)
    )
}

/// Whether `a` and `b` share at least half of the search terms of the one with more.
fn shares_most_words(a: &str, b: &str) -> bool {
    let terms = |text: &str| -> HashSet<String> { crate::terms::terms(text).into_iter().collect() };
    let (a, b) = (terms(a), terms(b));
    let longer = a.len().max(b.len());
    longer > 0 && a.intersection(&b).count() * 2 >= longer
}

/// An FTS5 expression matching any word of `query` (each quoted, so no FTS syntax leaks in).
fn fts_expression(query: &str) -> Option<String> {
    let words: Vec<String> = query
        .split(|c: char| !c.is_alphanumeric() && c != '_')
        .filter(|w| w.chars().count() >= 2)
        .map(|w| format!("\"{w}\""))
        .collect();
    (!words.is_empty()).then(|| words.join(" OR "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn memory(question: &str, answer: &str, files: &[&str], symbols: &[&str]) -> NewMemory {
        NewMemory {
            kind: Some(MemoryKind::Ask),
            question: question.into(),
            answer: answer.into(),
            files: files.iter().map(|s| s.to_string()).collect(),
            symbols: symbols.iter().map(|s| s.to_string()).collect(),
            code_hashes: symbols.iter().map(|s| content_hash(s)).collect(),
        }
    }

    fn store() -> (tempfile::TempDir, MemoryStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = MemoryStore::open_at(&dir.path().join("m.sqlite")).unwrap();
        (dir, store)
    }

    fn ids(memories: &[Memory]) -> Vec<i64> {
        memories.iter().map(|m| m.id).collect()
    }

    #[test]
    fn recall_by_words_needs_most_of_the_question_not_one_shared_word() {
        let (_dir, mut store) = store();
        let context = store
            .remember(&memory(
                "How does pith choose the context for a completion?",
                "By the names near the cursor.",
                &[],
                &[],
            ))
            .unwrap();
        let unrelated = store
            .recall(
                "Where does pith decide whether a completion is one line or several?",
                &[],
                &[],
                2,
            )
            .unwrap();
        assert_eq!(ids(&unrelated), Vec::<i64>::new());
        let reworded = store
            .recall("how is the completion context chosen by pith", &[], &[], 2)
            .unwrap();
        assert_eq!(ids(&reworded), vec![context]);
    }

    #[test]
    fn recall_ranks_symbols_then_files_then_words_and_stale_down() {
        let (_dir, mut store) = store();
        let words = store
            .remember(&memory(
                "how is the retry backoff computed",
                "exponentially",
                &[],
                &[],
            ))
            .unwrap();
        let file = store
            .remember(&memory(
                "what is in here",
                "parsers",
                &["src/parse.py"],
                &[],
            ))
            .unwrap();
        let symbol = store
            .remember(&memory("what does it do", "parses", &[], &["parse_config"]))
            .unwrap();
        let _unrelated = store
            .remember(&memory("colour of the logo", "blue", &["a.py"], &["logo"]))
            .unwrap();
        let recalled = store
            .recall(
                "retry backoff",
                &["src/parse.py".into()],
                &["parse_config".into()],
                10,
            )
            .unwrap();
        assert_eq!(ids(&recalled), vec![symbol, file, words]);

        assert_eq!(
            store.mark_stale(&[content_hash("parse_config")]).unwrap(),
            1
        );
        let recalled = store
            .recall(
                "retry backoff",
                &["src/parse.py".into()],
                &["parse_config".into()],
                2,
            )
            .unwrap();
        assert_eq!(ids(&recalled), vec![file, words]);
    }

    #[test]
    fn list_search_delete_clear() {
        let (_dir, mut store) = store();
        let a = store
            .remember(&memory("first question", "one", &[], &[]))
            .unwrap();
        let b = store
            .remember(&memory("second question", "two", &[], &[]))
            .unwrap();
        assert_eq!(ids(&store.list(10).unwrap()), vec![b, a]);
        assert_eq!(ids(&store.search("second", 10).unwrap()), vec![b]);
        // FTS syntax in a query is just words.
        assert!(store.search("\"NEAR( *", 10).unwrap().is_empty());
        assert!(store.delete(b).unwrap());
        assert!(!store.delete(b).unwrap());
        assert!(store.search("second", 10).unwrap().is_empty());
        store.explanation_put("h", "text").unwrap();
        assert_eq!(store.clear().unwrap(), 1);
        assert!(store.list(10).unwrap().is_empty());
        assert_eq!(store.explanation_get("h").unwrap(), None);
    }

    #[test]
    fn explanation_cache_round_trips_and_persists() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.sqlite");
        {
            let store = MemoryStore::open_at(&path).unwrap();
            store.explanation_put("abc", "first").unwrap();
            store.explanation_put("abc", "second").unwrap();
        }
        let store = MemoryStore::open_at(&path).unwrap();
        assert_eq!(
            store.explanation_get("abc").unwrap().as_deref(),
            Some("second")
        );
        assert_eq!(store.explanation_get("other").unwrap(), None);
    }

    #[test]
    fn corrupt_database_is_moved_aside() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.sqlite");
        std::fs::write(&path, b"this is not a database, it is a text file with enough bytes in it to look like a header of something".repeat(50)).unwrap();
        let mut store = MemoryStore::open_at(&path).unwrap();
        store.remember(&memory("q", "a", &[], &[])).unwrap();
        let aside: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|name| name.starts_with("m.sqlite.corrupt-"))
            .collect();
        assert_eq!(aside.len(), 1, "{aside:?}");
        let kept = std::fs::read(dir.path().join(&aside[0])).unwrap();
        assert!(kept.starts_with(b"this is not a database"));
    }

    #[test]
    fn unwritable_directory_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("file");
        std::fs::write(&blocker, "x").unwrap();
        // A path under a regular file can never be created.
        let error = MemoryStore::open_at(&blocker.join("sub").join("m.sqlite")).unwrap_err();
        assert!(error.to_string().contains("memory directory"), "{error}");
    }

    #[test]
    fn memories_whose_code_is_gone_from_their_file_become_stale() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = MemoryStore::open_at(&dir.path().join("m.sqlite")).unwrap();
        let about = |code: &str| NewMemory {
            kind: Some(MemoryKind::CodeAction),
            question: format!("docstring for {code}"),
            answer: "done".into(),
            files: vec!["app/a.py".into()],
            symbols: vec![],
            code_hashes: vec![content_hash(code)],
        };
        let kept = store.remember(&about("def f(): pass")).unwrap();
        let changed = store.remember(&about("def g(): pass")).unwrap();
        let present = std::collections::HashSet::from([content_hash("def f(): pass")]);
        assert_eq!(store.mark_stale_in_file("app/a.py", &present).unwrap(), 1);
        assert_eq!(store.mark_stale_in_file("app/a.py", &present).unwrap(), 0);
        let stale: Vec<(i64, bool)> = store
            .list(10)
            .unwrap()
            .iter()
            .map(|m| (m.id, m.stale))
            .collect();
        assert!(stale.contains(&(kept, false)) && stale.contains(&(changed, true)));
    }
}
