//! The words for dialects, roles and profiles, read and written the same
//! way by the `sluice` tool, the option table and every binding.

use std::fmt;
use std::str::FromStr;

use super::{Dialect, Profile, Role};

/// A word that names no dialect, role or profile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} must be {expected}, got {got:?}")]
pub struct UnknownName {
    /// What was being read (`dialect`, `role`, `profile`).
    pub what: &'static str,
    /// The words understood.
    pub expected: &'static str,
    /// The word given.
    pub got: String,
}

impl FromStr for Dialect {
    type Err = UnknownName;
    /// `v0`, `v1`, or the runtime's `--protocol` numbers `0`, `1`
    /// (any case, surrounding blanks ignored).
    fn from_str(s: &str) -> Result<Dialect, UnknownName> {
        match s.trim().to_ascii_lowercase().as_str() {
            "v0" | "0" => Ok(Dialect::V0),
            "v1" | "1" => Ok(Dialect::V1),
            _ => Err(UnknownName { what: "dialect", expected: "v0 or v1 (0 or 1)", got: s.to_string() }),
        }
    }
}

impl fmt::Display for Dialect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Dialect::V0 => "v0",
            Dialect::V1 => "v1",
        })
    }
}

impl FromStr for Role {
    type Err = UnknownName;
    /// `worker` or `engine` (any case).
    fn from_str(s: &str) -> Result<Role, UnknownName> {
        match s.trim().to_ascii_lowercase().as_str() {
            "worker" => Ok(Role::Worker),
            "engine" => Ok(Role::Engine),
            _ => Err(UnknownName { what: "role", expected: "worker or engine", got: s.to_string() }),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Worker => "worker",
            Role::Engine => "engine",
        })
    }
}

impl FromStr for Profile {
    type Err = UnknownName;
    /// `compat` or `modern` (any case).
    fn from_str(s: &str) -> Result<Profile, UnknownName> {
        match s.trim().to_ascii_lowercase().as_str() {
            "compat" => Ok(Profile::Compat),
            "modern" => Ok(Profile::Modern),
            _ => Err(UnknownName { what: "profile", expected: "compat or modern", got: s.to_string() }),
        }
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Profile::Compat => "compat",
            Profile::Modern => "modern",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_round_trip() {
        for d in [Dialect::V0, Dialect::V1] {
            assert_eq!(d.to_string().parse::<Dialect>(), Ok(d));
        }
        for r in [Role::Worker, Role::Engine] {
            assert_eq!(r.to_string().parse::<Role>(), Ok(r));
        }
        for p in [Profile::Compat, Profile::Modern] {
            assert_eq!(p.to_string().parse::<Profile>(), Ok(p));
        }
        assert_eq!("1".parse::<Dialect>(), Ok(Dialect::V1));
        assert_eq!(" V0".parse::<Dialect>(), Ok(Dialect::V0));
        assert_eq!("2".parse::<Dialect>().unwrap_err().to_string(), "dialect must be v0 or v1 (0 or 1), got \"2\"");
    }
}
