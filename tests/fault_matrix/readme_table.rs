//! README.md's table "What each fault does", rendered from the rows of main.rs and checked
//! against the README (FAULT_MATRIX_WRITE=1 rewrites it).

use super::*;

fn kind_name(kind: ErrorKind) -> String {
    format!("`{kind:?}`")
}

fn outcome_text(outcome: Outcome) -> String {
    match outcome {
        Token => "token".to_owned(),
        Fails(kind) => kind_name(kind),
    }
}

fn requests_text(requests: &RangeInclusive<usize>) -> String {
    if requests.start() == requests.end() {
        requests.start().to_string()
    } else {
        format!("{}–{}", requests.start(), requests.end())
    }
}

fn within_text(within: Duration) -> String {
    if within.is_zero() {
        "none".to_owned()
    } else {
        format!("≤ {} s", within.as_secs())
    }
}

fn chain_text(row: &Row) -> String {
    let mut text = match row.chain {
        Uses => "uses the token".to_owned(),
        Stops => "**stops**".to_owned(),
        MovesOn => "moves on".to_owned(),
    };
    if let Some((requests, within)) = &row.chain_differs {
        let plural = if *requests == (1..=1) { "" } else { "s" };
        let when = if within.is_zero() {
            "at once".to_owned()
        } else {
            within_text(*within)
        };
        let _ = write!(
            text,
            " at the probe: {} request{plural}, {when}",
            requests_text(requests),
        );
    }
    text
}

/// The README table, one line per row, faults in matrix order.
fn render(rows: &[Row]) -> String {
    let mut out = String::from(
        "| fault | source | result alone | requests | waits | in `DefaultAzureCredential` |\n\
         | --- | --- | --- | --- | --- | --- |\n",
    );
    for fault in FAULTS {
        for row in rows.iter().filter(|r| r.fault == fault) {
            let sources = if row.sources == MANAGED {
                "every managed identity source".to_owned()
            } else if row.sources == ALL {
                "all, Entra ID too".to_owned()
            } else {
                row.sources
                    .iter()
                    .map(|s| s.name())
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} |",
                fault.describe(),
                sources,
                outcome_text(row.alone.outcome),
                requests_text(&row.alone.requests),
                within_text(row.alone.within),
                chain_text(row),
            );
        }
    }
    out
}

#[test]
fn the_readme_table_is_the_rendered_matrix() {
    let expected = render(&expectations());
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
    let readme = std::fs::read_to_string(&path).unwrap();
    let (Some(begin), Some(end)) = (readme.find(BEGIN_MARKER), readme.find(END_MARKER)) else {
        panic!(
            "README.md has no {BEGIN_MARKER} … {END_MARKER} section; put one where the table belongs:\n\n{expected}"
        );
    };
    let inside = &readme[begin + BEGIN_MARKER.len()..end];
    let wanted = format!("\n{expected}");
    if inside == wanted {
        return;
    }
    if Env::process().var_non_empty("FAULT_MATRIX_WRITE").is_some() {
        let updated = format!(
            "{}{wanted}{}",
            &readme[..begin + BEGIN_MARKER.len()],
            &readme[end..]
        );
        std::fs::write(&path, updated).unwrap();
        return;
    }
    panic!(
        "README.md's fault table differs from tests/fault_matrix/. Regenerate it with \
         FAULT_MATRIX_WRITE=1 cargo test --all-features --test fault_matrix, or paste:\n\n{expected}"
    );
}
