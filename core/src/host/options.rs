//! The option table: every setting a binding offers for a channel (and for
//! the channels a server accepts), with its name in each language, its
//! kind, default, bounds and documentation, and the one check that decides
//! whether a value is taken.
//!
//! C (`sluice_options_set_*` and `sluice_options_set`), Python (keyword
//! arguments) and Node (option objects) all hand their values to
//! [`Options::set`] as an [`Input`]: the same value gets the same verdict
//! and the same error text in every language.

use std::fmt;
use std::time::Duration;

use crate::net::{ChannelConfig, Delivery};
use crate::wire::{Dialect, Profile, Role};

/// A language the option table serves: it decides how option names are
/// spelled and in which unit durations are given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Lang {
    /// `snake_case` names; durations in milliseconds.
    C,
    /// `snake_case` names; durations in seconds.
    Python,
    /// `camelCase` names; durations in milliseconds.
    Node,
}

impl Lang {
    /// The unit durations are given in.
    pub fn time_unit(self) -> &'static str {
        match self {
            Lang::Python => "seconds",
            Lang::C | Lang::Node => "milliseconds",
        }
    }
}

/// What kind of value an option takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Kind {
    /// `0`, `1`, `"v0"`, `"v1"`.
    Dialect,
    /// `"worker"`, `"engine"`, `"none"` (or null).
    Role,
    /// `"compat"`, `"modern"`.
    Profile,
    /// A whole number from `min` to `max`.
    Count {
        /// Smallest value taken.
        min: u64,
        /// Largest value taken.
        max: u64,
    },
    /// `true` or `false`.
    Flag,
    /// A duration in the language's unit ([`Lang::time_unit`]); `0` or
    /// null: no limit.
    Timeout,
    /// A duration in the language's unit, `0` included (never "none").
    Duration,
}

/// One option of the table.
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    /// The name in C and Python (`snake_case`).
    pub name: &'static str,
    /// The name in Node option objects.
    pub js: &'static str,
    /// What it takes.
    pub kind: Kind,
    /// The default, as documentation shows it.
    pub default: &'static str,
    /// What it does (one paragraph, the language's unit said as "time").
    pub doc: &'static str,
}

impl Spec {
    /// The name in `lang`.
    pub fn name_in(&self, lang: Lang) -> &'static str {
        match lang {
            Lang::Node => self.js,
            Lang::C | Lang::Python => self.name,
        }
    }
}

const U32: u64 = u32::MAX as u64;
/// Sizes of queues and buffers: up to 1 TiB.
const BIG: u64 = 1 << 40;

/// Every option, in the order the documentation lists them.
pub static OPTIONS: &[Spec] = &[
    Spec {
        name: "dialect",
        js: "dialect",
        kind: Kind::Dialect,
        default: "v1",
        doc: "Protocol dialect: v0 (Cocaine 0.10/0.11, [type, session, args]) or v1 (Cocaine 0.12, [channel, type, args, headers]).",
    },
    Spec {
        name: "protocol",
        js: "protocol",
        kind: Kind::Dialect,
        default: "1",
        doc: "The dialect as the runtime's --protocol number (0 or 1): another name for dialect.",
    },
    Spec {
        name: "role",
        js: "role",
        kind: Kind::Role,
        default: "worker (connected channels), engine (accepted channels)",
        doc: "Which side of the worker protocol the channel is: worker, engine, or none (every frame is delivered as a generic frame: service clients, proxies).",
    },
    Spec {
        name: "profile",
        js: "profile",
        kind: Kind::Profile,
        default: "compat",
        doc: "Encoding of sends: compat (the str family only, what every runtime reads; always used for v0) or modern (bin payloads).",
    },
    Spec {
        name: "max_frame_size",
        js: "maxFrameSize",
        kind: Kind::Count { min: 16, max: U32 },
        default: "536870912 (512 MiB)",
        doc: "Largest frame accepted, in bytes: a larger one ends the connection with EMSGSIZE as soon as its size is declared.",
    },
    Spec {
        name: "header_table_size",
        js: "headerTableSize",
        kind: Kind::Count { min: 0, max: U32 },
        default: "4096",
        doc: "Capacity of the v1 dynamic header table, in bytes.",
    },
    Spec {
        name: "lenient",
        js: "lenient",
        kind: Kind::Flag,
        default: "false",
        doc: "Skip well-formed values that are not frames instead of ending the connection with EBADMSG.",
    },
    Spec {
        name: "high_watermark",
        js: "highWaterMark",
        kind: Kind::Count { min: 1, max: BIG },
        default: "8388608 (8 MiB)",
        doc: "Sends are refused (would block) while this many bytes are queued.",
    },
    Spec {
        name: "low_watermark",
        js: "lowWaterMark",
        kind: Kind::Count { min: 0, max: BIG },
        default: "2097152 (2 MiB), or a quarter of high_watermark when that is less",
        doc: "After a refused send, drain is signalled once the queue holds no more than this many bytes. Must not exceed high_watermark.",
    },
    Spec {
        name: "max_queued",
        js: "maxQueued",
        kind: Kind::Count { min: 1, max: BIG },
        default: "67108864 (64 MiB), or twice high_watermark when that is more",
        doc: "Hard bound on the send queue for sends never refused at the high watermark (a served call's replies): past it the connection ends with ENOBUFS. Must not be below high_watermark.",
    },
    Spec {
        name: "connect_timeout",
        js: "connectTimeout",
        kind: Kind::Timeout,
        default: "30 s",
        doc: "Give up connecting after this long (ETIMEDOUT); 0 or none: the operating system's timeout.",
    },
    Spec {
        name: "close_linger",
        js: "closeLinger",
        kind: Kind::Duration,
        default: "10 s",
        doc: "After a close, how long the queue may take to flush and the peer to close its side before the connection is cut.",
    },
    Spec {
        name: "max_pending",
        js: "maxPending",
        kind: Kind::Count { min: 1, max: BIG },
        default: "16777216 (16 MiB)",
        doc: "Reading pauses while this many received bytes wait to be dispatched on the host's thread.",
    },
    Spec {
        name: "read_size",
        js: "readSize",
        kind: Kind::Count { min: 4096, max: 1 << 30 },
        default: "262144 (256 KiB)",
        doc: "Bytes asked of each read from the socket, at most: reads start at 16 KiB and grow to this while they fill the buffer.",
    },
    Spec {
        name: "frame_timeout",
        js: "frameTimeout",
        kind: Kind::Timeout,
        default: "60 s",
        doc: "Longest a frame may take to arrive once its first byte has (counted from that byte or the last complete frame): a peer that stalls or dribbles ends the connection with ETIMEDOUT. 0 or none: no limit.",
    },
    Spec {
        name: "read_idle_timeout",
        js: "readIdleTimeout",
        kind: Kind::Timeout,
        default: "none",
        doc: "End the connection with ETIMEDOUT when nothing at all arrives for this long. 0 or none: no limit.",
    },
    Spec {
        name: "max_sessions",
        js: "maxSessions",
        kind: Kind::Count { min: 1, max: U32 },
        default: "65536",
        doc: "Most sessions the peer may have open at once (v1 channels with a role); a frame opening one more is delivered as a dropped frame.",
    },
    Spec {
        name: "copy_threshold",
        js: "zeroCopyThreshold",
        kind: Kind::Count { min: 0, max: BIG },
        default: "16384 (Python), 32768 (Node)",
        doc: "Chunks of at least this many bytes reach the host without a copy (a view of the receive buffer); smaller ones are copied.",
    },
    Spec {
        name: "batch",
        js: "batch",
        kind: Kind::Count { min: 1, max: 1 << 20 },
        default: "1024",
        doc: "Most events handed to the host's thread per dispatch.",
    },
];

/// The spec called `key` in `lang`.
pub fn spec(lang: Lang, key: &str) -> Option<&'static Spec> {
    OPTIONS.iter().find(|s| s.name_in(lang) == key)
}

/// A value as a binding received it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Input<'a> {
    /// None / null.
    Null,
    /// A boolean.
    Bool(bool),
    /// A whole number.
    Int(i128),
    /// A number with a fraction (or any JavaScript number).
    Float(f64),
    /// A string (C's generic setter passes every value so).
    Str(&'a str),
}

impl<'a> Input<'a> {
    /// A value written as text (C's `sluice_options_set`, environment
    /// variables): `null`, `true`, `false`, a whole number, a number, or
    /// else the string itself.
    pub fn from_text(s: &'a str) -> Input<'a> {
        let t = s.trim();
        match t {
            "null" => Input::Null,
            "true" => Input::Bool(true),
            "false" => Input::Bool(false),
            _ => {
                if let Ok(n) = t.parse::<i128>() {
                    Input::Int(n)
                } else if let Some(x) = t.parse::<f64>().ok().filter(|x| x.is_finite() && t.bytes().any(|b| b.is_ascii_digit())) {
                    Input::Float(x)
                } else {
                    Input::Str(s)
                }
            }
        }
    }
}

impl fmt::Display for Input<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Input::Null => f.write_str("null"),
            Input::Bool(b) => write!(f, "{b}"),
            Input::Int(n) => write!(f, "{n}"),
            Input::Float(x) if x.is_finite() && x.fract() == 0.0 && x.abs() < 1e18 => write!(f, "{}", *x as i64),
            Input::Float(x) => write!(f, "{x}"),
            Input::Str(s) => write!(f, "{s:?}"),
        }
    }
}

/// Why a value was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptionError {
    /// The option's name in the language that set it (or the unknown key).
    pub key: String,
    /// Why, without the name.
    pub reason: String,
}

impl fmt::Display for OptionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.reason)
    }
}

impl std::error::Error for OptionError {}

/// Settings being built by a binding: the core's [`ChannelConfig`] and
/// what the host side of a binding needs besides.
#[derive(Debug, Clone)]
pub struct Options {
    lang: Lang,
    config: ChannelConfig,
    role: Option<Option<Role>>,
    low_set: bool,
    max_queued_set: bool,
    /// Chunks of at least this many bytes are handed over without a copy.
    pub copy_threshold: usize,
    /// Events per dispatch.
    pub batch: usize,
}

pub(super) fn whole(v: Input<'_>) -> Option<i128> {
    match v {
        Input::Int(n) => Some(n),
        Input::Float(x) if x.is_finite() && x.fract() == 0.0 && x.abs() < 1e30 => Some(x as i128),
        Input::Str(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn number(v: Input<'_>) -> Option<f64> {
    match v {
        Input::Int(n) => Some(n as f64),
        Input::Float(x) => Some(x),
        Input::Str(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A timeout in `lang`'s unit: `Some(None)` for no limit (0 or null),
/// `None` if the value is not a number of that unit from 0 to 10^9.
pub(super) fn timeout(lang: Lang, value: Input<'_>) -> Option<Option<Duration>> {
    match (value, number(value)) {
        (Input::Null, _) => Some(None),
        (_, Some(x)) if (0.0..=1e9).contains(&x) => {
            let secs = if lang == Lang::Python { x } else { x / 1000.0 };
            Some((x > 0.0).then(|| Duration::from_secs_f64(secs)))
        }
        _ => None,
    }
}

impl Options {
    /// The defaults for `lang`.
    pub fn new(lang: Lang) -> Options {
        let mut config = ChannelConfig::default();
        // Python runs callbacks on its own thread (poll delivery); Node's
        // addon batches events on the I/O threads for its loop, and C
        // chooses (inline by default).
        if lang == Lang::Python {
            config.delivery = Delivery::Poll;
        }
        let copy_threshold = match lang {
            Lang::Node => 32 << 10,
            _ => 16 << 10,
        };
        Options { lang, config, role: None, low_set: false, max_queued_set: false, copy_threshold, batch: 1024 }
    }

    /// The language the options are set from.
    pub fn lang(&self) -> Lang {
        self.lang
    }

    /// Sets the option called `key` (in this language) to `value`. A null
    /// value leaves the default, except where null means something
    /// (`role`: none; timeouts: no limit).
    pub fn set(&mut self, key: &str, value: Input<'_>) -> Result<(), OptionError> {
        let spec = spec(self.lang, key).ok_or_else(|| OptionError { key: key.to_string(), reason: "unknown option".into() })?;
        self.set_spec(spec, value)
    }

    fn set_spec(&mut self, spec: &'static Spec, value: Input<'_>) -> Result<(), OptionError> {
        let lang = self.lang;
        let refuse = |reason: String| OptionError { key: spec.name_in(lang).to_string(), reason };
        let c = &mut self.config;
        match spec.kind {
            Kind::Dialect => {
                let d = match value {
                    Input::Null => return Ok(()),
                    Input::Str(s) => s.parse::<Dialect>().ok(),
                    v => match whole(v) {
                        Some(0) => Some(Dialect::V0),
                        Some(1) => Some(Dialect::V1),
                        _ => None,
                    },
                };
                let d = d.ok_or_else(|| refuse(format!("must be 0, 1, \"v0\" or \"v1\", got {value}")))?;
                c.dialect = d;
            }
            Kind::Role => {
                let r = match value {
                    Input::Null => Some(None),
                    Input::Str(s) if s.eq_ignore_ascii_case("none") => Some(None),
                    Input::Str(s) => s.parse::<Role>().ok().map(Some),
                    _ => None,
                };
                let r = r.ok_or_else(|| refuse(format!("must be \"worker\", \"engine\" or \"none\", got {value}")))?;
                self.role = Some(r);
            }
            Kind::Profile => {
                let p = match value {
                    Input::Null => return Ok(()),
                    Input::Str(s) => s.parse::<Profile>().ok(),
                    _ => None,
                };
                c.profile = p.ok_or_else(|| refuse(format!("must be \"compat\" or \"modern\", got {value}")))?;
            }
            Kind::Flag => {
                let b = match value {
                    Input::Null => return Ok(()),
                    Input::Bool(b) => b,
                    Input::Str("true") => true,
                    Input::Str("false") => false,
                    _ => return Err(refuse(format!("must be true or false, got {value}"))),
                };
                match spec.name {
                    "lenient" => c.lenient = b,
                    other => unreachable!("flag {other}"),
                }
            }
            Kind::Count { min, max } => {
                if value == Input::Null {
                    return Ok(());
                }
                let n = whole(value)
                    .filter(|n| (min as i128..=max as i128).contains(n))
                    .ok_or_else(|| refuse(format!("must be a whole number from {min} to {max}, got {value}")))?
                    as usize;
                match spec.name {
                    "max_frame_size" => c.max_frame_size = n,
                    "header_table_size" => c.header_table_size = n,
                    "high_watermark" => c.high_watermark = n,
                    "low_watermark" => {
                        c.low_watermark = n;
                        self.low_set = true;
                    }
                    "max_queued" => {
                        c.max_queued = n;
                        self.max_queued_set = true;
                    }
                    "max_pending" => c.max_pending = n,
                    "read_size" => c.read_size = n,
                    "max_sessions" => c.max_sessions = n,
                    "copy_threshold" => self.copy_threshold = n,
                    "batch" => self.batch = n,
                    other => unreachable!("count {other}"),
                }
            }
            Kind::Timeout | Kind::Duration => {
                let unit = lang.time_unit();
                let d = match (value, number(value)) {
                    (Input::Null, _) if spec.kind == Kind::Timeout => None,
                    (_, Some(x)) if (0.0..=1e9).contains(&x) => {
                        let secs = if lang == Lang::Python { x } else { x / 1000.0 };
                        (x > 0.0 || spec.kind == Kind::Duration).then(|| Duration::from_secs_f64(secs))
                    }
                    _ => {
                        let none = if spec.kind == Kind::Timeout { " (0 or null: no limit)" } else { "" };
                        return Err(refuse(format!("must be a number of {unit} from 0 to 1000000000{none}, got {value}")));
                    }
                };
                match spec.name {
                    "connect_timeout" => c.connect_timeout = d,
                    "frame_timeout" => c.frame_timeout = d,
                    "read_idle_timeout" => c.read_idle_timeout = d,
                    "close_linger" => c.close_linger = d.unwrap_or_default(),
                    other => unreachable!("duration {other}"),
                }
            }
        }
        Ok(())
    }

    /// Checks the options against each other (after every `set`):
    /// `low_watermark <= high_watermark <= max_queued`. A watermark or
    /// bound left at its default follows the one given (see the table).
    pub fn validate(&mut self) -> Result<(), OptionError> {
        let lang = self.lang;
        let key = |name: &str| spec(Lang::C, name).map_or(name, |s| s.name_in(lang)).to_string();
        let c = &mut self.config;
        if !self.low_set {
            c.low_watermark = ChannelConfig::default().low_watermark.min(c.high_watermark / 4);
        }
        if !self.max_queued_set {
            c.max_queued = ChannelConfig::default().max_queued.max(c.high_watermark.saturating_mul(2));
        }
        if c.low_watermark > c.high_watermark {
            return Err(OptionError {
                key: key("low_watermark"),
                reason: format!("must not exceed {} ({}), got {}", key("high_watermark"), c.high_watermark, c.low_watermark),
            });
        }
        if c.max_queued < c.high_watermark {
            return Err(OptionError {
                key: key("max_queued"),
                reason: format!("must not be below {} ({}), got {}", key("high_watermark"), c.high_watermark, c.max_queued),
            });
        }
        Ok(())
    }

    /// Sets every `(key, value)` pair, then validates.
    pub fn from_pairs<'a>(lang: Lang, pairs: impl IntoIterator<Item = (&'a str, Input<'a>)>) -> Result<Options, OptionError> {
        let mut o = Options::new(lang);
        for (k, v) in pairs {
            o.set(k, v)?;
        }
        o.validate()?;
        Ok(o)
    }

    /// Sets the delivery mode (C chooses; the other bindings poll).
    pub fn set_delivery(&mut self, d: Delivery) {
        self.config.delivery = d;
    }

    /// The channel settings, with `default_role` unless a role was set.
    pub fn config(&self, default_role: Option<Role>) -> ChannelConfig {
        ChannelConfig { role: self.role.unwrap_or(default_role), ..self.config.clone() }
    }

    /// The dialect set (or the default).
    pub fn dialect(&self) -> Dialect {
        self.config.dialect
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(lang: Lang, pairs: &[(&str, Input<'_>)]) -> String {
        Options::from_pairs(lang, pairs.iter().copied()).unwrap_err().to_string()
    }

    #[test]
    fn names_are_unique_in_every_language() {
        for lang in [Lang::C, Lang::Python, Lang::Node] {
            let mut names: Vec<_> = OPTIONS.iter().map(|s| s.name_in(lang)).collect();
            names.sort();
            names.dedup();
            assert_eq!(names.len(), OPTIONS.len());
        }
    }

    #[test]
    fn one_verdict_for_every_language() {
        let o = Options::from_pairs(Lang::Node, [("maxFrameSize", Input::Float(1024.0)), ("dialect", Input::Str("v0"))]).unwrap();
        assert_eq!(o.config(None).max_frame_size, 1024);
        assert_eq!(o.dialect(), Dialect::V0);
        assert_eq!(
            err(Lang::Python, &[("max_frame_size", Input::Int(0))]),
            "max_frame_size: must be a whole number from 16 to 4294967295, got 0"
        );
        assert_eq!(
            err(Lang::Node, &[("maxFrameSize", Input::Float(0.0))]),
            "maxFrameSize: must be a whole number from 16 to 4294967295, got 0"
        );
        assert_eq!(
            err(Lang::C, &[("max_frame_size", Input::from_text("0"))]),
            "max_frame_size: must be a whole number from 16 to 4294967295, got 0"
        );
        assert_eq!(Input::from_text("1.5"), Input::Float(1.5));
        assert_eq!(Input::from_text("v0"), Input::Str("v0"));
        assert_eq!(Input::from_text("inf"), Input::Str("inf"));
        assert_eq!(
            err(Lang::Node, &[("readSize", Input::Float(1.5))]),
            "readSize: must be a whole number from 4096 to 1073741824, got 1.5"
        );
        assert_eq!(err(Lang::Python, &[("nope", Input::Int(1))]), "nope: unknown option");
    }

    #[test]
    fn watermarks_follow_each_other_or_are_refused() {
        let o = Options::from_pairs(Lang::Python, [("high_watermark", Input::Int(1 << 16))]).unwrap();
        let c = o.config(None);
        assert_eq!((c.high_watermark, c.low_watermark), (1 << 16, 1 << 14));
        assert_eq!(c.max_queued, 64 << 20);
        let o = Options::from_pairs(Lang::Python, [("high_watermark", Input::Int(1 << 30))]).unwrap();
        assert_eq!(o.config(None).max_queued, 2 << 30);
        assert_eq!(
            err(Lang::Python, &[("high_watermark", Input::Int(10)), ("low_watermark", Input::Int(11))]),
            "low_watermark: must not exceed high_watermark (10), got 11"
        );
        assert_eq!(
            err(Lang::Node, &[("highWaterMark", Input::Float(100.0)), ("maxQueued", Input::Float(99.0))]),
            "maxQueued: must not be below highWaterMark (100), got 99"
        );
    }

    #[test]
    fn durations_in_each_languages_unit() {
        let p = Options::from_pairs(Lang::Python, [("connect_timeout", Input::Float(1.5))]).unwrap();
        assert_eq!(p.config(None).connect_timeout, Some(Duration::from_millis(1500)));
        let n = Options::from_pairs(Lang::Node, [("connectTimeout", Input::Float(1500.0))]).unwrap();
        assert_eq!(n.config(None).connect_timeout, Some(Duration::from_millis(1500)));
        let z = Options::from_pairs(Lang::C, [("connect_timeout", Input::Str("0")), ("read_idle_timeout", Input::Null)]).unwrap();
        assert_eq!(z.config(None).connect_timeout, None);
        assert_eq!(
            err(Lang::Python, &[("connect_timeout", Input::Float(-1.0))]),
            "connect_timeout: must be a number of seconds from 0 to 1000000000 (0 or null: no limit), got -1"
        );
        assert!(err(Lang::Node, &[("frameTimeout", Input::Float(f64::NAN))]).starts_with("frameTimeout: must be a number of milliseconds"));
    }

    #[test]
    fn role_dialect_profile_words() {
        let o =
            Options::from_pairs(Lang::C, [("role", Input::Str("none")), ("protocol", Input::Str("0")), ("profile", Input::Str("modern"))])
                .unwrap();
        assert_eq!(o.config(Some(Role::Worker)).role, None);
        assert_eq!(o.dialect(), Dialect::V0);
        assert_eq!(Options::new(Lang::C).config(Some(Role::Engine)).role, Some(Role::Engine));
        assert_eq!(err(Lang::Python, &[("dialect", Input::Int(2))]), "dialect: must be 0, 1, \"v0\" or \"v1\", got 2");
        assert_eq!(err(Lang::Node, &[("role", Input::Str("boss"))]), "role: must be \"worker\", \"engine\" or \"none\", got \"boss\"");
    }
}
