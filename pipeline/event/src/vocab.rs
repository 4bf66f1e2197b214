//! The closed vocabularies of the schema: outcome, class, MTA.

use std::fmt;
use std::str::FromStr;

/// A string that is not a member of one of the closed vocabularies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseVocabError {
    pub kind: &'static str,
    pub value: String,
}

impl fmt::Display for ParseVocabError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown {} {:?}", self.kind, self.value)
    }
}

impl std::error::Error for ParseVocabError {}

macro_rules! vocab {
    ($(#[$m:meta])* $name:ident, $kind:literal { $($variant:ident => $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The names of `ALL`, in its order.
            pub const NAMES: &'static [&'static str] = &[$($s),+];

            /// The position of this member in `ALL`.
            pub fn index(self) -> usize {
                self as usize
            }

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $s),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = ParseVocabError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($s => Ok($name::$variant),)+
                    _ => Err(ParseVocabError { kind: $kind, value: s.to_owned() }),
                }
            }
        }
    };
}

vocab!(
    /// What became of one recipient at one logged moment.
    Outcome, "outcome" {
        Delivered => "delivered",
        Deferred => "deferred",
        Bounced => "bounced",
        Expired => "expired",
    }
);

vocab!(
    /// The cause of a deferral or bounce (`none` for deliveries, `expired` for expiries).
    Class, "class" {
        ConnectionLimit => "connection_limit",
        RateLimit => "rate_limit",
        Reputation => "reputation",
        Blocklist => "blocklist",
        Auth => "auth",
        Greylist => "greylist",
        Content => "content",
        Recipient => "recipient",
        Policy => "policy",
        Network => "network",
        Tls => "tls",
        Local => "local",
        Other => "other",
        None => "none",
        Expired => "expired",
    }
);

vocab!(
    /// The MTA family that wrote a record.
    Mta, "mta" {
        Postfix => "postfix",
        Exim => "exim",
        PowerMta => "powermta",
        KumoMta => "kumomta",
    }
);

impl Outcome {
    /// Attempts are deliveries, deferrals and bounces; an expiry is not an attempt.
    pub fn is_attempt(self) -> bool {
        !matches!(self, Outcome::Expired)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variant_round_trips_through_its_name() {
        for c in Class::ALL {
            assert_eq!(c.as_str().parse::<Class>(), Ok(*c));
        }
        for o in Outcome::ALL {
            assert_eq!(o.as_str().parse::<Outcome>(), Ok(*o));
        }
        for m in Mta::ALL {
            assert_eq!(m.as_str().parse::<Mta>(), Ok(*m));
        }
        for (i, c) in Class::ALL.iter().enumerate() {
            assert_eq!((c.index(), Class::NAMES[i]), (i, c.as_str()));
        }
    }

    #[test]
    fn unknown_names_are_rejected_with_their_kind() {
        let err = "throttled".parse::<Class>().unwrap_err();
        assert_eq!(err.kind, "class");
        assert!(err.to_string().contains("throttled"));
    }

    #[test]
    fn expiry_is_not_an_attempt() {
        assert!(!Outcome::Expired.is_attempt());
        assert!(Outcome::Deferred.is_attempt());
    }
}
