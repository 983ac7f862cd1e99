//! Options from a TOML file, below flags and environment variables.
//!
//! `--config FILE` (or `AGENTD_CONFIG`) names a file of `option = value` lines
//! using the long option names (`max-concurrent = 8`, `listen = "0.0.0.0:8700"`;
//! `_` and `-` are interchangeable), at the top level for options every verb has
//! (`data-dir`, `log`, …) or in a `[serve]` / `[run]` table for one verb's options.
//! Each value becomes that option's default, so a flag or its environment
//! variable still wins: flag > environment > file > built-in default.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::Command;

/// Finds `--config FILE` / `--config=FILE` in the arguments, else `AGENTD_CONFIG`.
pub fn config_path(args: &[OsString]) -> Option<PathBuf> {
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        let text = arg.to_string_lossy();
        if text == "--" {
            break;
        }
        if text == "--config" {
            return iter.next().map(PathBuf::from);
        }
        if let Some(value) = text.strip_prefix("--config=") {
            return Some(PathBuf::from(value));
        }
    }
    std::env::var_os("AGENTD_CONFIG")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// Applies the file's values as defaults of `command`'s options.
pub fn apply(command: Command, path: &Path) -> Result<Command, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("config file {}: {e}", path.display()))?;
    let table: toml::Table = text
        .parse()
        .map_err(|e| format!("config file {}: {e}", path.display()))?;
    let mut command = command;
    for (key, value) in &table {
        match value {
            toml::Value::Table(section) => {
                let Some(mut sub) = command.find_subcommand(key).cloned() else {
                    return Err(format!(
                        "config file {}: unknown section [{key}]",
                        path.display()
                    ));
                };
                for (option, value) in section {
                    sub = set_default(sub, option, value)
                        .map_err(|e| format!("config file {}: [{key}] {e}", path.display()))?;
                }
                command = command.mut_subcommand(key, |_| sub);
            }
            _ => {
                command = set_default(command, key, value)
                    .map_err(|e| format!("config file {}: {e}", path.display()))?;
            }
        }
    }
    Ok(command)
}

fn set_default(command: Command, key: &str, value: &toml::Value) -> Result<Command, String> {
    let long = key.replace('_', "-");
    let id = command
        .get_arguments()
        .find(|arg| arg.get_long() == Some(long.as_str()))
        .map(|arg| arg.get_id().clone())
        .ok_or_else(|| format!("unknown option `{key}`"))?;
    if id == "config" {
        return Err("`config` cannot be set from a config file".into());
    }
    let values: Vec<String> = match value {
        toml::Value::String(text) => vec![text.clone()],
        toml::Value::Integer(number) => vec![number.to_string()],
        toml::Value::Float(number) => vec![number.to_string()],
        toml::Value::Boolean(flag) => vec![flag.to_string()],
        toml::Value::Array(items) => items
            .iter()
            .map(|item| match item {
                toml::Value::String(text) => text.clone(),
                other => other.to_string(),
            })
            .collect(),
        other => return Err(format!("`{key}` = {other} is not a plain value")),
    };
    Ok(command.mut_arg(id, |arg| arg.default_values(values)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{Arg, ArgAction};

    fn command() -> Command {
        Command::new("agentd")
            .arg(
                Arg::new("log")
                    .long("log")
                    .global(true)
                    .default_value("warn"),
            )
            .arg(Arg::new("config").long("config"))
            .subcommand(
                Command::new("serve")
                    .arg(
                        Arg::new("listen")
                            .long("listen")
                            .default_value("127.0.0.1:8700"),
                    )
                    .arg(
                        Arg::new("max_concurrent")
                            .long("max-concurrent")
                            .env("AGENTD_TEST_MAX_CONCURRENT_UNSET")
                            .default_value("4"),
                    )
                    .arg(Arg::new("tool").long("tool").action(ArgAction::Append)),
            )
    }

    fn with_file(text: &str) -> Result<Command, String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agentd.toml");
        std::fs::write(&path, text).unwrap();
        apply(command(), &path)
    }

    #[test]
    fn file_values_are_defaults_below_flags() {
        let command = with_file(
            "log = \"info\"\n[serve]\nmax_concurrent = 8\nlisten = \"0.0.0.0:9000\"\ntool = [\"a\", \"b\"]\n",
        )
        .unwrap();
        let matches = command
            .clone()
            .try_get_matches_from(["agentd", "serve", "--listen", "127.0.0.1:1"])
            .unwrap();
        assert_eq!(matches.get_one::<String>("log").unwrap(), "info");
        let serve = matches.subcommand_matches("serve").unwrap();
        assert_eq!(serve.get_one::<String>("listen").unwrap(), "127.0.0.1:1");
        assert_eq!(serve.get_one::<String>("max_concurrent").unwrap(), "8");
        let tools: Vec<_> = serve.get_many::<String>("tool").unwrap().collect();
        assert_eq!(tools, ["a", "b"]);
    }

    #[test]
    fn unknown_keys_and_sections_are_errors() {
        assert!(
            with_file("bogus = 1\n")
                .unwrap_err()
                .contains("unknown option `bogus`")
        );
        assert!(
            with_file("[nope]\nx = 1\n")
                .unwrap_err()
                .contains("unknown section [nope]")
        );
        assert!(
            with_file("not toml = = 1")
                .unwrap_err()
                .contains("config file")
        );
    }

    #[test]
    fn finds_the_config_argument() {
        let args: Vec<OsString> = ["agentd", "--config", "/x.toml", "serve"]
            .iter()
            .map(OsString::from)
            .collect();
        assert_eq!(config_path(&args), Some(PathBuf::from("/x.toml")));
        let args: Vec<OsString> = ["agentd", "serve", "--config=/y.toml"]
            .iter()
            .map(OsString::from)
            .collect();
        assert_eq!(config_path(&args), Some(PathBuf::from("/y.toml")));
    }
}
