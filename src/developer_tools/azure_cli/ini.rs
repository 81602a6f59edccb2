//! az's INI files (`config`, `clouds.config`) read the way Python's
//! `configparser.ConfigParser()` reads them — knack 0.14 and az 2.91 use that class as it
//! comes: strict (a repeated section or option is an error), `=` and `:` as delimiters, `#`
//! and `;` starting whole-line comments only, values continued on more deeply indented lines,
//! a `DEFAULT` section every section inherits from, and `%` interpolation on every `get`
//! (Python 3.11 `configparser.py`, `RawConfigParser._read` and `BasicInterpolation`).
//!
//! Whatever configparser rejects is an error here too (az then fails at start-up, so the fast
//! path must not answer). So is whatever this reader cannot be sure to read the same way: any
//! `%` in a value (interpolation), control characters other than tab and line breaks (Python
//! counts `\x1c`–`\x1f` as whitespace, Rust does not), and option names outside ASCII (Python's
//! and Rust's lower-casing could differ). `fixtures/azure_cli/configparser_cases.py` writes
//! what Python makes of the cases the tests below replay (`configparser_cases.json`).

use std::collections::HashSet;

/// A parsed file: sections in order, each with its options (names lower-cased) and values
/// (continuation lines joined with `\n`).
#[derive(Debug, Default)]
pub(crate) struct Ini {
    sections: Vec<(String, Vec<(String, String)>)>,
    defaults: Vec<(String, String)>,
}

const DEFAULT_SECTION: &str = "DEFAULT";

/// Options while reading: names and the lines of their values.
type RawOptions = Vec<(String, Vec<String>)>;

/// Where options currently go.
#[derive(Clone, Copy, PartialEq)]
enum Target {
    Defaults,
    Section(usize),
}

impl Ini {
    /// What `ConfigParser.get(section, option)` returns: the option of the section, else of
    /// `DEFAULT`; `None` when the section does not exist or neither has the option.
    pub(crate) fn get(&self, section: &str, option: &str) -> Option<&str> {
        let (_, options) = self.sections.iter().find(|(name, _)| name == section)?;
        let option = option.to_ascii_lowercase();
        options
            .iter()
            .chain(&self.defaults)
            .find(|(name, _)| *name == option)
            .map(|(_, value)| value.as_str())
    }

    /// Whether every name and value is ASCII.
    pub(crate) fn is_ascii(&self) -> bool {
        self.sections
            .iter()
            .all(|(name, options)| name.is_ascii() && options.iter().all(|(_, v)| v.is_ascii()))
            && self.defaults.iter().all(|(_, v)| v.is_ascii())
    }

    /// The names of the options `section` has or inherits (`ConfigParser.options`), whether or
    /// not the section is in the file.
    pub(crate) fn options<'a>(&'a self, section: &str) -> impl Iterator<Item = &'a str> {
        self.sections
            .iter()
            .filter(move |(name, _)| name == section)
            .flat_map(|(_, options)| options)
            .chain(&self.defaults)
            .map(|(name, _)| name.as_str())
    }
}

/// Python's universal newlines: `\r\n`, `\r` and `\n` end a line.
fn lines(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        match rest.find(['\r', '\n']) {
            Some(i) => {
                let line = &rest[..i];
                let skip = if rest[i..].starts_with("\r\n") { 2 } else { 1 };
                rest = &rest[i + skip..];
                Some(line)
            }
            None => {
                let line = rest;
                rest = "";
                Some(line)
            }
        }
    })
}

/// `SECTCRE.match(value)` (`\[(?P<header>.+)\]`): the name between the `[` and the last `]`
/// after it, at least one character long; the rest of the line does not matter.
fn section_header(value: &str) -> Option<&str> {
    let rest = value.strip_prefix('[')?;
    let end = rest.rfind(']')?;
    (end > 0).then(|| &rest[..end])
}

/// Parses `text` (see the module documentation), or says why not.
pub(crate) fn parse(text: &str) -> Result<Ini, &'static str> {
    if text
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
    {
        return Err("an INI file holds control characters");
    }
    // Values as lists of lines while reading; joined at the end.
    let mut sections: Vec<(String, RawOptions)> = Vec::new();
    let mut defaults: RawOptions = Vec::new();
    // Sections and (section, option) pairs seen, for strict mode.
    let mut seen_sections: HashSet<String> = HashSet::new();
    let mut seen_options: HashSet<(String, String)> = HashSet::new();
    // The section options go to, and its name.
    let mut current: Option<(Target, String)> = None;
    // The option continuation lines extend: its section and index.
    let mut option: Option<(Target, usize)> = None;
    let mut indent_level = 0;
    let mut bad_line = false;

    for line in lines(text) {
        let stripped = line.trim();
        let comment = stripped.starts_with(['#', ';']);
        if comment || stripped.is_empty() {
            // An empty line (not a comment) becomes part of a multi-line value.
            if !comment
                && let Some((target, i)) = option
                && let Some(lines) = lines_of(&mut sections, &mut defaults, target, i)
            {
                lines.push(String::new());
            }
            continue;
        }
        let indent = line.chars().take_while(|c| c.is_whitespace()).count();
        if let Some((target, i)) = option
            && indent > indent_level
            && let Some(lines) = lines_of(&mut sections, &mut defaults, target, i)
        {
            lines.push(stripped.to_owned());
            continue;
        }
        indent_level = indent;
        if let Some(name) = section_header(stripped) {
            let target = if let Some(i) = sections.iter().position(|(n, _)| n == name) {
                if seen_sections.contains(name) {
                    return Err("an INI file repeats a section");
                }
                Target::Section(i)
            } else if name == DEFAULT_SECTION {
                Target::Defaults
            } else {
                sections.push((name.to_owned(), Vec::new()));
                Target::Section(sections.len() - 1)
            };
            if target != Target::Defaults {
                seen_sections.insert(name.to_owned());
            }
            current = Some((target, name.to_owned()));
            option = None;
            continue;
        }
        let Some((target, section)) = &current else {
            return Err("an INI file has a line before its first section header");
        };
        let Some(delimiter) = stripped.find(['=', ':']) else {
            // configparser reports such lines once it has read the whole file.
            bad_line = true;
            continue;
        };
        let name = stripped[..delimiter].trim_end();
        if name.is_empty() {
            bad_line = true;
            continue;
        }
        if !name.is_ascii() {
            return Err("an INI option name is not ASCII");
        }
        let name = name.to_ascii_lowercase();
        if !seen_options.insert((section.clone(), name.clone())) {
            return Err("an INI file repeats an option");
        }
        let value = stripped[delimiter + 1..].trim().to_owned();
        let options = match *target {
            Target::Defaults => Some(&mut defaults),
            Target::Section(i) => sections.get_mut(i).map(|(_, options)| options),
        };
        if let Some(options) = options {
            options.push((name, vec![value]));
            option = Some((*target, options.len() - 1));
        }
    }
    if bad_line {
        return Err("an INI file has a line that is neither a section, an option nor a comment");
    }
    let join = |options: RawOptions| -> Vec<(String, String)> {
        options
            .into_iter()
            .map(|(name, lines)| (name, lines.join("\n").trim_end().to_owned()))
            .collect()
    };
    let ini = Ini {
        sections: sections
            .into_iter()
            .map(|(name, options)| (name, join(options)))
            .collect(),
        defaults: join(defaults),
    };
    let interpolated = ini
        .sections
        .iter()
        .flat_map(|(_, options)| options)
        .chain(&ini.defaults)
        .any(|(_, value)| value.contains('%'));
    if interpolated {
        return Err("an INI value holds a % (configparser interpolates it)");
    }
    Ok(ini)
}

/// The lines of the option at `index` of `target` (always there: the parser made it).
fn lines_of<'a>(
    sections: &'a mut [(String, RawOptions)],
    defaults: &'a mut [(String, Vec<String>)],
    target: Target,
    index: usize,
) -> Option<&'a mut Vec<String>> {
    let options = match target {
        Target::Defaults => defaults,
        Target::Section(i) => sections.get_mut(i)?.1.as_mut_slice(),
    };
    options.get_mut(index).map(|(_, lines)| lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Python 3.11's verdicts, written by `fixtures/azure_cli/configparser_cases.py`.
    const PYTHON: &str = include_str!("../../../fixtures/azure_cli/configparser_cases.json");

    #[derive(serde::Deserialize)]
    struct Verdicts {
        /// The (section, option) pairs looked up in every case that reads.
        lookups: Vec<(String, String)>,
        cases: Vec<Case>,
    }

    #[derive(serde::Deserialize)]
    struct Case {
        text: String,
        /// The error `read` raises.
        error: Option<String>,
        /// The lookups for which `get` finds something, and what it returns (`!Error`: `get`
        /// raises); the other lookups find nothing.
        found: Vec<(String, String, String)>,
    }

    /// Cases this reader refuses though Python reads them: it cannot be sure to read them
    /// the same way.
    fn stricter(text: &str) -> bool {
        text.contains('%')
            || text
                .chars()
                .any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
            || text.lines().any(|l| {
                l.split(['=', ':'])
                    .next()
                    .is_some_and(|n| !n.trim().is_ascii())
            })
    }

    #[test]
    fn reads_what_python_reads_and_refuses_what_it_refuses() {
        let Verdicts { lookups, cases } = serde_json::from_str(PYTHON).unwrap();
        assert!(cases.len() > 50, "the fixture lost its cases");
        for Case { text, error, found } in &cases {
            let text = text.as_str();
            match (error, parse(text)) {
                (Some(_), Ok(_)) => {
                    panic!("{text:?}: Python refuses it ({error:?}), this reads it")
                }
                (Some(_), Err(_)) => {}
                (None, Err(why)) => assert!(
                    stricter(text),
                    "{text:?}: refused ({why}) though Python reads it"
                ),
                (None, Ok(ini)) => {
                    assert!(!stricter(text), "{text:?} should have been refused");
                    for (section, option, _) in found {
                        assert!(
                            lookups.iter().any(|(s, o)| (s, o) == (section, option)),
                            "{text:?}: [{section}] {option} is not one of the lookups"
                        );
                    }
                    for (section, option) in &lookups {
                        let value = found
                            .iter()
                            .find(|(s, o, _)| (s, o) == (section, option))
                            .map(|(_, _, value)| value.as_str());
                        assert_eq!(
                            ini.get(section, option),
                            value,
                            "{text:?}: [{section}] {option}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn defaults_are_inherited_in_options() {
        let ini = parse("[DEFAULT]\nendpoint_x = 1\n[AzureCloud]\nprofile = latest\n").unwrap();
        let options: Vec<_> = ini.options("AzureCloud").collect();
        assert_eq!(options, ["profile", "endpoint_x"]);
        assert_eq!(ini.options("Other").collect::<Vec<_>>(), ["endpoint_x"]);
    }
}
