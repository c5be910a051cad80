//! Where every file lives (SPEC §2): the root is the parent of the folder that
//! holds the config file, the data folder is `<root>/data` unless `--data-dir`
//! says otherwise. The CLI client computes these without parsing the config.

use std::path::{Path, PathBuf};

/// The default config path, relative to the working directory.
pub const DEFAULT_CONFIG: &str = "config/autonomy.json";

/// The files of one data folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataPaths {
    pub dir: PathBuf,
    pub state: PathBuf,
    pub audit: PathBuf,
    pub escalations: PathBuf,
    pub logs: PathBuf,
    pub socket: PathBuf,
    pub pid: PathBuf,
    /// The run-time kill-switch setting that overrides the config (SPEC §4.7).
    pub kill_switch: PathBuf,
    /// The incident history database (SQLite) and the daily summaries' folder.
    pub history: PathBuf,
    pub reports: PathBuf,
}

impl DataPaths {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        let dir = dir.into();
        DataPaths {
            state: dir.join("service-state.json"),
            audit: dir.join("audit.log"),
            escalations: dir.join("escalations.log"),
            logs: dir.join("logs"),
            socket: dir.join("manager.sock"),
            pid: dir.join("manager.pid"),
            kill_switch: dir.join("kill-switch.json"),
            history: dir.join("history.db"),
            reports: dir.join("reports"),
            dir,
        }
    }

    /// The data folder for `config_path`, or `data_dir` when given.
    pub fn resolve(config_path: &Path, data_dir: Option<&Path>) -> Self {
        match data_dir {
            Some(d) => DataPaths::new(d),
            None => DataPaths::new(root_of(config_path).join("data")),
        }
    }

    /// `data/logs/<service>.log`.
    pub fn service_log(&self, service: &str) -> PathBuf {
        self.logs.join(format!("{service}.log"))
    }
}

/// The root for a config file: the parent of the folder holding it.
pub fn root_of(config_path: &Path) -> PathBuf {
    let abs = if config_path.is_absolute() {
        config_path.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|d| d.join(config_path))
            .unwrap_or_else(|_| config_path.to_path_buf())
    };
    abs.parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_is_parent_of_config_folder() {
        assert_eq!(
            root_of(Path::new("/srv/app/config/autonomy.json")),
            PathBuf::from("/srv/app")
        );
        let p = DataPaths::resolve(Path::new("/srv/app/config/autonomy.json"), None);
        assert_eq!(p.socket, PathBuf::from("/srv/app/data/manager.sock"));
        let p = DataPaths::resolve(Path::new("x/y.json"), Some(Path::new("/tmp/d")));
        assert_eq!(p.service_log("a"), PathBuf::from("/tmp/d/logs/a.log"));
    }
}
