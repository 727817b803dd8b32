//! A small command-line parser: `--flag value`, `--flag=value`, switches, repeatable options and
//! positionals, with errors that name the option and say what was expected.

use std::collections::HashMap;

/// One option a command accepts.
pub struct Opt {
    pub name: &'static str,
    pub takes_value: bool,
    pub repeatable: bool,
}

/// An option taking a value, once.
pub const fn value(name: &'static str) -> Opt {
    Opt {
        name,
        takes_value: true,
        repeatable: false,
    }
}

/// An option taking a value, any number of times.
pub const fn many(name: &'static str) -> Opt {
    Opt {
        name,
        takes_value: true,
        repeatable: true,
    }
}

/// A switch.
pub const fn flag(name: &'static str) -> Opt {
    Opt {
        name,
        takes_value: false,
        repeatable: false,
    }
}

/// What was parsed.
#[derive(Default, Debug)]
pub struct Parsed {
    pub values: HashMap<&'static str, Vec<String>>,
    pub positionals: Vec<String>,
    pub help: bool,
}

impl Parsed {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values
            .get(name)
            .and_then(|v| v.last())
            .map(String::as_str)
    }

    pub fn all(&self, name: &str) -> &[String] {
        self.values.get(name).map(Vec::as_slice).unwrap_or(&[])
    }

    pub fn has(&self, name: &str) -> bool {
        self.values.contains_key(name)
    }

    pub fn number<T: std::str::FromStr>(&self, name: &str) -> Result<Option<T>, String> {
        self.get(name)
            .map(|v| {
                v.replace('_', "").parse::<T>().map_err(|_| {
                    format!("invalid value {v:?} for '{name}': expected a non-negative number")
                })
            })
            .transpose()
    }
}

/// Parses `args` against `spec` for `command`.
pub fn parse(command: &str, args: &[String], spec: &[Opt]) -> Result<Parsed, String> {
    let mut out = Parsed::default();
    let mut rest = args.iter();
    let mut only_positionals = false;
    while let Some(arg) = rest.next() {
        if only_positionals || !arg.starts_with("--") || arg == "-" {
            if arg == "-h" && !only_positionals {
                out.help = true;
                continue;
            }
            out.positionals.push(arg.clone());
            continue;
        }
        if arg == "--" {
            only_positionals = true;
            continue;
        }
        if arg == "--help" {
            out.help = true;
            continue;
        }
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) => (n, Some(v.to_owned())),
            None => (arg.as_str(), None),
        };
        let opt = spec.iter().find(|o| o.name == name).ok_or_else(|| {
            format!("unknown option '{name}' for {command}; see 'natsbridge {command} --help'")
        })?;
        let value = if opt.takes_value {
            match inline {
                Some(v) => v,
                None => rest
                    .next()
                    .cloned()
                    .ok_or_else(|| format!("option '{name}' needs a value"))?,
            }
        } else {
            if inline.is_some() {
                return Err(format!("option '{name}' takes no value"));
            }
            String::new()
        };
        let slot = out.values.entry(opt.name).or_default();
        if !slot.is_empty() && !opt.repeatable {
            return Err(format!("option '{name}' given more than once"));
        }
        slot.push(value);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn parses_forms() {
        let spec = [value("--a"), many("--m"), flag("--f")];
        let p = parse(
            "t",
            &s(&["x", "--a=1", "--m", "2", "--m", "3", "--f", "--", "--y"]),
            &spec,
        )
        .unwrap();
        assert_eq!(p.get("--a"), Some("1"));
        assert_eq!(p.all("--m"), ["2", "3"]);
        assert!(p.has("--f"));
        assert_eq!(p.positionals, ["x", "--y"]);
        assert!(parse("t", &s(&["--a", "1", "--a", "2"]), &spec).is_err());
        assert!(parse("t", &s(&["--nope"]), &spec)
            .unwrap_err()
            .contains("--nope"));
        assert!(parse("t", &s(&["--a"]), &spec).is_err());
        assert!(parse("t", &s(&["--f=1"]), &spec).is_err());
    }
}
