//! Sizes in bytes as users write them (`--memory-limit 512M`).

/// A number of bytes as the user gave it (`512M`): said back in errors as given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Size {
    pub bytes: usize,
    pub text: String,
}

impl std::fmt::Display for Size {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

/// `123`, `64K`, `512M`, `4G`, `1T` (also `512MiB`, `4gb`): bytes, or powers of 1024.
pub fn parse_size(s: &str) -> Result<Size, String> {
    let t = s.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (n, unit) = t.split_at(digits);
    if n.is_empty() {
        return Err(format!(
            "{s:?} is not a size: a whole number, then K, M, G or T (e.g. 512M)"
        ));
    }
    let too_big = || format!("{s:?} is more bytes than this machine can count");
    let n: usize = n.parse().map_err(|_| too_big())?;
    let shift = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        _ => {
            return Err(format!(
                "{s:?}: unknown unit {unit:?}; use K, M, G or T (powers of 1024)"
            ));
        }
    };
    let bytes = 1usize
        .checked_shl(shift)
        .and_then(|unit| n.checked_mul(unit))
        .ok_or_else(too_big)?;
    if bytes == 0 {
        return Err("0 leaves the query nothing: leave the flag out for no limit".into());
    }
    Ok(Size {
        bytes,
        text: t.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn a_size_is_bytes_or_powers_of_1024_and_is_said_back_as_given() {
        let bytes = |s| parse_size(s).map(|z| z.bytes);
        assert_eq!(bytes("123"), Ok(123));
        assert_eq!(bytes("64K"), Ok(64 << 10));
        assert_eq!(bytes("512m"), Ok(512 << 20));
        assert_eq!(bytes("4GiB"), Ok(4 << 30));
        assert_eq!(bytes("1T"), Ok(1 << 40));
        assert_eq!(parse_size(" 512M ").map(|z| z.to_string()), Ok("512M".to_owned()));
    }

    #[test]
    fn a_size_that_is_not_one_says_why() {
        let err = |s| parse_size(s).expect_err(s);
        assert!(err("0").contains("leave the flag out"), "{}", err("0"));
        assert!(err("12X").contains("unknown unit \"X\""), "{}", err("12X"));
        assert!(err("M").contains("not a size"), "{}", err("M"));
        assert!(err("-1G").contains("not a size"), "{}", err("-1G"));
        assert!(err("99999999999T").contains("more bytes"), "{}", err("99999999999T"));
        assert!(
            err("99999999999999999999").contains("more bytes"),
            "{}",
            err("99999999999999999999")
        );
    }
}
