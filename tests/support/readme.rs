//! The tables in README.md that the code must match.

/// The rows of the table between `<!-- {name}:begin` and `<!-- {name}:end -->`, header and
/// separator left out: each row's cells, trimmed.
pub fn table(name: &str) -> Vec<Vec<String>> {
    let readme = include_str!("../../README.md");
    let begin = format!("<!-- {name}:begin");
    let end = format!("<!-- {name}:end -->");
    let start = readme
        .find(&begin)
        .unwrap_or_else(|| panic!("README.md has no {begin}"));
    let stop = readme[start..]
        .find(&end)
        .unwrap_or_else(|| panic!("README.md has no {end}"));
    readme[start..start + stop]
        .lines()
        .filter(|line| line.starts_with('|'))
        .skip(2)
        .map(|line| {
            line.trim_matches('|')
                .split(" | ")
                .map(|cell| cell.trim().to_owned())
                .collect()
        })
        .collect()
}
