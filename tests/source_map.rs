//! The "Where things live" map at the top of the crate docs (`src/lib.rs`) names every folder and
//! file directly under `src/`, so that it keeps matching the tree.

use std::path::Path;

#[test]
fn the_crate_docs_map_names_every_module_under_src() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let lib = std::fs::read_to_string(src.join("lib.rs")).unwrap();
    let start = lib
        .find("//! # Where things live")
        .expect("the map's heading");
    let map: String = lib[start..]
        .lines()
        .take_while(|line| line.starts_with("//!"))
        .collect::<Vec<_>>()
        .join("\n");
    let mut missing = Vec::new();
    for entry in std::fs::read_dir(&src).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().into_string().unwrap();
        let named = if entry.file_type().unwrap().is_dir() {
            format!("{name}/")
        } else if let Some(stem) = name.strip_suffix(".rs") {
            if stem == "lib" {
                continue;
            }
            format!("{stem}.rs")
        } else {
            continue;
        };
        if !map.contains(&named) {
            missing.push(named);
        }
    }
    // And every name in the map's first column exists.
    for line in map.lines() {
        let line = line.trim_start_matches("//!");
        let Some(first) = line.strip_prefix(' ').filter(|l| !l.starts_with(' ')) else {
            continue;
        };
        let column = first.split("  ").next().unwrap_or("");
        for name in column.split(", ") {
            let name = name.trim();
            if (name.ends_with(".rs") || name.ends_with('/')) && !src.join(name).exists() {
                missing.push(format!("{name} (named in the map, not in src/)"));
            }
        }
    }
    missing.sort();
    assert!(
        missing.is_empty(),
        "src/lib.rs's \"Where things live\" map and src/ differ: {missing:?}"
    );
}
