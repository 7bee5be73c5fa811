//! Re-analysis after edits: only the top-level items (children of the root) that the edits or
//! tree-sitter's changed ranges touch are analyzed again; the symbols, imports and references
//! of the other items are kept, their positions shifted past the edits. A one-character edit
//! in a large file then costs about one item's analysis instead of the whole file's.
//!
//! This relies on analysis being local to a top-level item (see `analyze_parts`), with two
//! exceptions handled here: a Python module-level assignment takes its doc from the next
//! statement, and a Rust item takes its doc from the comments and attributes before it.

use std::ops::Range;
use std::path::Path;

use tree_sitter::{InputEdit, Node, Point, Tree};

use super::analyze::{Parts, analyze_parts, file_index, top_level_ranges};
use super::{FileIndex, Lang};
use crate::syntax::{Import, Reference, Span, Symbol};

/// Re-analyzes a file whose previous analysis is `previous`. `old_tree` is the tree that
/// analysis saw, already `edit`ed with `edits` (in the order they were applied); `tree` is the
/// new tree of `text`. Equal to `analyze(path, lang, text, tree)`, at a fraction of its cost.
pub fn reanalyze(
    previous: &FileIndex,
    old_tree: &Tree,
    edits: &[InputEdit],
    text: &str,
    tree: &Tree,
) -> FileIndex {
    let lang = previous.lang;
    let path: &Path = &previous.path;
    let query = &lang.queries().combined;
    let regions = match query.root_kinds {
        Some(_) => dirty_regions(lang, text, old_tree, edits, tree),
        None => None,
    };
    let Some(regions) = regions else {
        return super::analyze(path, lang, text, tree);
    };
    let fresh = analyze_parts(lang, text, tree, query, Some(&regions));
    match merge(previous, edits, &regions, fresh) {
        Some(parts) => file_index(path, lang, text, tree, parts),
        None => super::analyze(path, lang, text, tree),
    }
}

/// The byte ranges (new text) of the runs of top-level items to analyze again, or None when
/// the whole file must be.
fn dirty_regions(
    lang: Lang,
    text: &str,
    old_tree: &Tree,
    edits: &[InputEdit],
    tree: &Tree,
) -> Option<Vec<Region>> {
    let mut dirty: Vec<Range<usize>> = Vec::new();
    for edit in edits {
        for range in &mut dirty {
            range.start = shift_byte(range.start, edit);
            range.end = shift_byte(range.end, edit);
        }
        dirty.push(edit.start_byte..edit.new_end_byte);
    }
    dirty.extend(
        old_tree
            .changed_ranges(tree)
            .map(|range| range.start_byte..range.end_byte),
    );
    let root = tree.root_node();
    let units = top_level_ranges(root);
    if units.is_empty() {
        return None;
    }
    // Whole lines: imports only know their line, so every item on an edited line is redone.
    let bytes = text.as_bytes();
    for range in &mut dirty {
        let start = range.start.min(bytes.len());
        let end = range.end.clamp(start, bytes.len());
        range.start = memchr::memrchr(b'\n', &bytes[..start]).map_or(0, |newline| newline + 1);
        range.end =
            memchr::memchr(b'\n', &bytes[end..]).map_or(bytes.len(), |newline| end + newline);
    }
    let mut marked = vec![false; units.len()];
    for range in &dirty {
        let first = units.partition_point(|unit| unit.end < range.start);
        let last = units.partition_point(|unit| unit.start <= range.end);
        if first < last {
            marked[first..last].fill(true);
        } else {
            // Between items: an item may have gone, so both neighbours are redone.
            marked[first.saturating_sub(1)] = true;
            marked[first.min(units.len() - 1)] = true;
        }
    }
    let mut walk = root.walk();
    let children: Vec<Node> = root.children(&mut walk).collect();
    // Docs come from neighbours: once, from the items changed themselves.
    let changed = marked.clone();
    for (index, _) in changed.iter().enumerate().filter(|(_, changed)| **changed) {
        match lang {
            // A module-level assignment's doc is the statement after it.
            Lang::Python if index > 0 && children[index - 1].kind() == "expression_statement" => {
                marked[index - 1] = true
            }
            // An item's doc is in the comments (and attributes) before it, back to the
            // previous item.
            Lang::Rust => {
                let mut next = index + 1;
                while next < units.len() {
                    marked[next] = true;
                    if !matches!(
                        children[next].kind(),
                        "line_comment" | "block_comment" | "attribute_item"
                    ) {
                        break;
                    }
                    next += 1;
                }
            }
            _ => {}
        }
    }
    // Items sharing a line with a redone one are redone too (imports only know their line).
    loop {
        let mut grew = false;
        for index in 0..units.len() {
            if !marked[index] {
                continue;
            }
            if index > 0
                && !marked[index - 1]
                && children[index - 1].end_position().row == children[index].start_position().row
            {
                marked[index - 1] = true;
                grew = true;
            }
            if index + 1 < units.len()
                && !marked[index + 1]
                && children[index + 1].start_position().row == children[index].end_position().row
            {
                marked[index + 1] = true;
                grew = true;
            }
        }
        if !grew {
            break;
        }
    }
    // Each run of marked items, widened over the gaps around it (text that was there may
    // have gone, or be covered by no node after an error), with the lines of both.
    let mut regions: Vec<Region> = Vec::new();
    for (index, unit) in units.iter().enumerate() {
        if !marked[index] {
            continue;
        }
        let (end, last_row) = match children.get(index + 1) {
            Some(next) => (
                next.start_byte(),
                (next.start_position().row as u32)
                    .saturating_sub(1)
                    .max(children[index].end_position().row as u32),
            ),
            None => (usize::MAX, u32::MAX),
        };
        match regions.last_mut() {
            Some(last) if index > 0 && marked[index - 1] => {
                last.bytes.end = end;
                last.rows = *last.rows.start()..=last_row;
            }
            _ => {
                let (start, first_row) = match index.checked_sub(1) {
                    Some(previous) => (
                        units[previous].end,
                        (children[previous].end_position().row as u32 + 1)
                            .min(children[index].start_position().row as u32),
                    ),
                    None => (0, 0),
                };
                regions.push(Region {
                    bytes: start..end,
                    rows: first_row..=last_row,
                });
            }
        }
        let _ = unit;
    }
    Some(regions)
}

/// A stretch of the new text analyzed again: whole top-level items and the gaps around them.
#[derive(Debug, Clone)]
pub(crate) struct Region {
    pub(crate) bytes: Range<usize>,
    /// The lines of its items (not of the gaps, which may share a line with a kept item).
    pub(crate) rows: std::ops::RangeInclusive<u32>,
}

/// Where a byte of the text before `edit` is after it (a byte inside the replaced range goes
/// to the end of the replacement).
fn shift_byte(byte: usize, edit: &InputEdit) -> usize {
    if byte <= edit.start_byte {
        byte
    } else if byte >= edit.old_end_byte {
        byte - edit.old_end_byte + edit.new_end_byte
    } else {
        edit.new_end_byte
    }
}

/// Where a position of the text before `edit` is after it. Kept items never overlap an edit:
/// a position is before its start (unmoved) or at or after its old end (shifted).
fn shift_point(byte: usize, point: Point, edit: &InputEdit) -> (usize, Point) {
    if byte <= edit.start_byte {
        return (byte, point);
    }
    let byte = byte.max(edit.old_end_byte);
    let point = point.max(edit.old_end_position);
    let moved = if point.row == edit.old_end_position.row {
        Point {
            row: edit.new_end_position.row,
            column: point.column - edit.old_end_position.column + edit.new_end_position.column,
        }
    } else {
        Point {
            row: point.row - edit.old_end_position.row + edit.new_end_position.row,
            column: point.column,
        }
    };
    (byte - edit.old_end_byte + edit.new_end_byte, moved)
}

fn shift_span(span: Span, edits: &[InputEdit]) -> Span {
    let mut start = (
        span.start_byte,
        Point {
            row: span.start_line as usize,
            column: span.start_col as usize,
        },
    );
    let mut end = (
        span.end_byte,
        Point {
            row: span.end_line as usize,
            column: span.end_col as usize,
        },
    );
    for edit in edits {
        start = shift_point(start.0, start.1, edit);
        end = shift_point(end.0, end.1, edit);
    }
    Span {
        start_byte: start.0,
        end_byte: end.0,
        start_line: start.1.row as u32,
        start_col: start.1.column as u32,
        end_line: end.1.row as u32,
        end_col: end.1.column as u32,
    }
}

/// Where the line of a kept import goes. A line shared with an edit's start or end keeps a
/// kept import before the start, or takes one after the end along; an import inside the edit
/// is in a redone item, whose lines the caller drops anyway. Lines strictly inside are gone.
fn shift_line(line: u32, edits: &[InputEdit]) -> Option<u32> {
    let mut line = line as usize;
    for edit in edits {
        if line <= edit.start_position.row {
            continue;
        }
        if line < edit.old_end_position.row {
            return None;
        }
        line = line - edit.old_end_position.row + edit.new_end_position.row;
    }
    Some(line as u32)
}

/// Where a (shifted) span stands against the regions.
#[derive(PartialEq)]
enum Place {
    Outside,
    Inside,
    Across,
}

fn place(span: &Span, regions: &[Region]) -> Place {
    for region in regions {
        let region = &region.bytes;
        if region.start <= span.start_byte && span.end_byte <= region.end {
            return Place::Inside;
        }
        if span.start_byte < region.end && region.start < span.end_byte {
            return Place::Across;
        }
    }
    Place::Outside
}

/// The previous analysis outside the regions, shifted, merged with the fresh analysis of the
/// regions; None when an old definition straddles a region (the whole file is redone).
fn merge(
    previous: &FileIndex,
    edits: &[InputEdit],
    regions: &[Region],
    fresh: Parts,
) -> Option<Parts> {
    // Old symbols kept, shifted, with the new index of each old one (None when dropped).
    let mut kept: Vec<(usize, Symbol)> = Vec::new();
    for (old_index, symbol) in previous.symbols.iter().enumerate() {
        let span = shift_span(symbol.span, edits);
        match place(&span, regions) {
            Place::Inside => {}
            Place::Across => return None,
            Place::Outside => {
                let mut symbol = symbol.clone();
                symbol.span = span;
                symbol.name_span = shift_span(symbol.name_span, edits);
                kept.push((old_index, symbol));
            }
        }
    }
    let order = |symbol: &Symbol| {
        (
            symbol.span.start_byte,
            std::cmp::Reverse(symbol.span.end_byte),
        )
    };
    let mut symbols: Vec<Symbol> = Vec::with_capacity(kept.len() + fresh.symbols.len());
    let mut new_of_old: Vec<Option<usize>> = vec![None; previous.symbols.len()];
    let mut new_of_fresh: Vec<usize> = vec![0; fresh.symbols.len()];
    // Parents come before their children in both lists, so they are remapped first.
    let mut old_iter = kept.into_iter().peekable();
    let mut fresh_iter = fresh.symbols.into_iter().enumerate().peekable();
    loop {
        let take_old = match (old_iter.peek(), fresh_iter.peek()) {
            (Some((_, old)), Some((_, new))) => order(old) <= order(new),
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => break,
        };
        if take_old {
            let (old_index, mut symbol) = old_iter.next()?;
            symbol.parent = match symbol.parent {
                Some(parent) => Some((*new_of_old.get(parent)?)?),
                None => None,
            };
            new_of_old[old_index] = Some(symbols.len());
            symbols.push(symbol);
        } else {
            let (fresh_index, mut symbol) = fresh_iter.next()?;
            symbol.parent = match symbol.parent {
                Some(parent) => Some(*new_of_fresh.get(parent)?),
                None => None,
            };
            new_of_fresh[fresh_index] = symbols.len();
            symbols.push(symbol);
        }
    }

    let mut imports: Vec<Import> = previous
        .imports
        .iter()
        .filter_map(|import| {
            let line = shift_line(import.line, edits)?;
            let in_region = regions.iter().any(|region| region.rows.contains(&line));
            (!in_region).then(|| Import {
                line,
                ..import.clone()
            })
        })
        .collect();
    imports.extend(fresh.imports);
    imports.sort_by_key(|import| import.line);

    let mut references: Vec<Reference> = previous
        .references
        .iter()
        .filter_map(|reference| {
            let span = shift_span(reference.span(), edits);
            (place(&span, regions) == Place::Outside).then(|| Reference {
                name: reference.name.clone(),
                start_byte: span.start_byte,
                line: span.start_line,
                col: span.start_col,
            })
        })
        .collect();
    references.extend(fresh.references);
    references.sort_by_key(|reference| reference.start_byte);
    Some(Parts {
        symbols,
        imports,
        references,
    })
}
