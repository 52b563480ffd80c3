//! Go's `text/tabwriter` as buildx configures it for `--list` tables:
//! `tabwriter.NewWriter(w, 1, 8, 1, '\t', 0)`, so columns are padded with TABS.
//!
//! Part of stage 2's output (`bake::print`). Imports nothing from the crate. Scripts cut
//! these tables on tabs, so the exact tab count matters as much as the alignment.

/// The smallest column width (`minwidth`).
const MIN_WIDTH: usize = 1;
/// Width of one tab stop (`tabwidth`).
const TAB_WIDTH: usize = 8;
/// Room added to the widest cell of a column (`padding`).
const PADDING: usize = 1;

/// One line split at its tabs: every cell but the last was tab-terminated.
type Line<'a> = Vec<&'a str>;

/// Formats tab-separated `text` the way Go's tabwriter does, with TABS as padding.
// Compat: Go text/tabwriter Writer.format / writeLines / writePadding, with buildx's
// settings from printTargetList and printVars (commands/bake.go).
pub(crate) fn format(text: &str) -> String {
    let mut lines: Vec<Line<'_>> = text.split('\n').map(|l| l.split('\t').collect()).collect();
    // A trailing newline ends the last line; Go keeps no empty line after it.
    let ends_with_newline = text.ends_with('\n');
    if ends_with_newline {
        lines.pop();
    }
    let mut out = String::with_capacity(text.len() * 2);
    let mut widths = Vec::new();
    format_block(&lines, 0, lines.len(), &mut widths, &mut out);
    if !ends_with_newline {
        // Go writes no newline after the last, unterminated line.
        out.pop();
    }
    out
}

/// Lays out lines `start..end`, where `widths` holds the widths of the enclosing columns.
fn format_block(
    lines: &[Line<'_>],
    start: usize,
    end: usize,
    widths: &mut Vec<usize>,
    out: &mut String,
) {
    let column = widths.len();
    let mut line0 = start;
    let mut this = start;
    while this < end {
        if column + 1 >= lines[this].len() {
            this += 1;
            continue;
        }
        // A column block: consecutive lines that all have a tab-terminated cell here.
        write_lines(lines, line0, this, widths, out);
        line0 = this;
        let mut width = MIN_WIDTH;
        while this < end && column + 1 < lines[this].len() {
            width = width.max(lines[this][column].chars().count() + PADDING);
            this += 1;
        }
        widths.push(width);
        format_block(lines, line0, this, widths, out);
        widths.pop();
        line0 = this;
    }
    write_lines(lines, line0, end, widths, out);
}

/// Writes lines `start..end` with the column `widths` decided so far.
fn write_lines(lines: &[Line<'_>], start: usize, end: usize, widths: &[usize], out: &mut String) {
    for line in &lines[start..end] {
        for (j, cell) in line.iter().enumerate() {
            out.push_str(cell);
            if j + 1 < line.len()
                && let Some(width) = widths.get(j)
            {
                // Padding with tabs: round the cell up to the next tab stop.
                let cell_width = width.div_ceil(TAB_WIDTH) * TAB_WIDTH;
                let padding = cell_width - cell.chars().count();
                out.extend(std::iter::repeat_n('\t', padding.div_ceil(TAB_WIDTH)));
            }
        }
        out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_cells_get_one_tab() {
        assert_eq!(
            format("TARGET\tDESCRIPTION\nweb\t\n"),
            "TARGET\tDESCRIPTION\nweb\t\n"
        );
    }

    #[test]
    fn a_long_cell_pushes_the_column_to_the_next_tab_stop() {
        let text = format("TARGET\tDESCRIPTION\nmigrations\tx\napi\t\n");
        assert_eq!(text, "TARGET\t\tDESCRIPTION\nmigrations\tx\napi\t\t\n");
    }

    #[test]
    fn columns_are_sized_independently() {
        let text = format("VARIABLE\tTYPE\tVALUE\tDESCRIPTION\nTAG\t\tlatest\tImage tag\n");
        assert_eq!(
            text,
            "VARIABLE\tTYPE\tVALUE\tDESCRIPTION\nTAG\t\t\tlatest\tImage tag\n"
        );
    }

    #[test]
    fn a_line_without_tabs_ends_the_column_block() {
        let text = format("a\tb\nplain\nlonger-than-eight\tc\n");
        assert_eq!(text, "a\tb\nplain\nlonger-than-eight\tc\n");
    }
}
