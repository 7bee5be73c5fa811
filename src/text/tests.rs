//! Tests of position conversions and incremental edits, including a property test against a
//! naive reference implementation.

use proptest::prelude::*;

use super::*;

fn pos(line: u32, character: u32) -> Position {
    Position { line, character }
}

const SAMPLE: &str = "aé😀b\r\nxyz\n\nlast";

#[test]
fn offsets_in_each_encoding_with_clamping() {
    use PositionEncoding::*;
    let cases = [
        (pos(0, 0), Utf16, 0),
        (pos(0, 2), Utf16, 3),  // after é (2 bytes)
        (pos(0, 3), Utf16, 3),  // inside the emoji's surrogate pair: clamp to its start
        (pos(0, 4), Utf16, 7),  // after the emoji
        (pos(0, 5), Utf16, 8),  // end of line, before \r\n
        (pos(0, 99), Utf16, 8), // past the end of the line: before \r\n
        (pos(0, 4), Utf32, 8),
        (pos(0, 3), Utf8, 3),
        (pos(0, 4), Utf8, 3), // inside the emoji's bytes
        (pos(1, 3), Utf16, 13),
        (pos(2, 5), Utf16, 14),
        (pos(3, 4), Utf16, 19),
        (pos(9, 0), Utf16, 19), // past the last line: the end
    ];
    let document = Document::new(SAMPLE, None);
    for (position, encoding, expected) in cases {
        assert_eq!(
            offset_at(SAMPLE, position, encoding),
            expected,
            "{position:?} {encoding:?}"
        );
        assert_eq!(
            document.offset_at(position, encoding),
            expected,
            "{position:?} {encoding:?}"
        );
    }
}

#[test]
fn positions_of_offsets_round_trip() {
    use PositionEncoding::*;
    let document = Document::new(SAMPLE, None);
    for (offset, encoding, expected) in [
        (3, Utf16, pos(0, 2)),
        (5, Utf16, pos(0, 2)), // inside the emoji: its start
        (7, Utf16, pos(0, 4)),
        (7, Utf32, pos(0, 3)),
        (7, Utf8, pos(0, 7)),
        (13, Utf16, pos(1, 3)),
        (99, Utf16, pos(3, 4)),
    ] {
        assert_eq!(
            position_at(SAMPLE, offset, encoding),
            expected,
            "{offset} {encoding:?}"
        );
        assert_eq!(
            document.position_at(offset, encoding),
            expected,
            "{offset} {encoding:?}"
        );
    }
}

#[test]
fn inverted_range_is_refused_and_loses_nothing() {
    let mut document = Document::new("def f():\n    pass\n", Some(Lang::Python));
    let change = Change {
        range: Some((pos(1, 2), pos(0, 1))),
        text: "x".into(),
    };
    let error = document.apply_changes(&[change], PositionEncoding::Utf16);
    assert!(matches!(error, Err(TextError::InvertedRange { .. })));
    assert_eq!(document.text(), "def f():\n    pass\n");
}

#[test]
fn full_text_change_replaces_everything_and_reparses() {
    let mut document = Document::new("def f(): pass\n", Some(Lang::Python));
    let change = Change {
        range: None,
        text: "class A: pass\n".into(),
    };
    document
        .apply_changes(&[change], PositionEncoding::Utf16)
        .expect("applies");
    assert_eq!(document.text(), "class A: pass\n");
    let tree = document.tree().expect("tree");
    assert!(tree.root_node().to_sexp().contains("class_definition"));
}

/// The reference: split into lines, count UTF-16 units by hand.
fn reference_offset(text: &str, position: Position) -> usize {
    let lines: Vec<&str> = text.split('\n').collect();
    let Some(line) = lines.get(position.line as usize) else {
        return text.len();
    };
    let line_start: usize = lines[..position.line as usize]
        .iter()
        .map(|l| l.len() + 1)
        .sum();
    let content = line.strip_suffix('\r').unwrap_or(line);
    let mut units = 0;
    let mut bytes = 0;
    for c in content.chars() {
        let width = c.encode_utf16(&mut [0; 2]).len();
        if units + width > position.character as usize {
            break;
        }
        units += width;
        bytes += c.len_utf8();
    }
    line_start + bytes
}

fn piece() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "a",
        "é",
        "😀",
        "\r\n",
        "\n",
        " ",
        "def f(x):",
        "    return x",
        "(",
        ")",
        ":",
        "class C:",
        "\"s\"",
        "#",
        "中",
    ])
}

fn text() -> impl Strategy<Value = String> {
    prop::collection::vec(piece(), 0..30).prop_map(|pieces| pieces.concat())
}

fn edit() -> impl Strategy<Value = (u32, u32, u32, u32, String)> {
    (0u32..8, 0u32..14, 0u32..3, 0u32..14, text())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn incremental_edits_match_the_reference_and_a_fresh_parse(
        initial in text(),
        edits in prop::collection::vec(edit(), 1..8),
    ) {
        let mut document = Document::new(&initial, Some(Lang::Python));
        let mut reference = initial.clone();
        for (line, character, extra_lines, end_character, insert) in edits {
            let start = pos(line, character);
            let end = pos(line + extra_lines, if extra_lines == 0 { character.max(end_character) } else { end_character });
            let start_byte = reference_offset(&reference, start);
            let end_byte = reference_offset(&reference, end).max(start_byte);
            reference.replace_range(start_byte..end_byte, &insert);
            document
                .apply_changes(&[Change { range: Some((start, end)), text: insert }], PositionEncoding::Utf16)
                .expect("valid change");
            prop_assert_eq!(document.text(), reference.clone());
        }
        let fresh = lang::parse(Lang::Python, &reference, None).expect("parses");
        let tree = document.tree().expect("tree");
        prop_assert_eq!(tree.root_node().to_sexp(), fresh.root_node().to_sexp());
        for offset in 0..=reference.len() {
            if reference.is_char_boundary(offset) {
                let position = position_at(&reference, offset, PositionEncoding::Utf16);
                let back = offset_at(&reference, position, PositionEncoding::Utf16);
                // Offsets between \r and \n map back before the \r.
                prop_assert!(back == offset || &reference[back..offset] == "\r");
            }
        }
    }
}
