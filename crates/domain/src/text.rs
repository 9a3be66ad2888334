//! Small text rules shared by several entities.

/// Trims `raw` and checks its length in characters is within `min..=max`.
pub fn bounded(raw: &str, min: usize, max: usize) -> Result<String, String> {
    let value = raw.trim();
    let len = value.chars().count();
    if len < min {
        if min == 1 {
            return Err("must not be empty".into());
        }
        return Err(format!("must be at least {min} characters"));
    }
    if len > max {
        return Err(format!("must be at most {max} characters"));
    }
    Ok(value.to_string())
}

/// Like [`bounded`] with no minimum, but an empty result becomes `None`.
pub fn optional(raw: Option<&str>, max: usize) -> Result<Option<String>, String> {
    match raw {
        None => Ok(None),
        Some(raw) => {
            let value = bounded(raw, 0, max)?;
            Ok((!value.is_empty()).then_some(value))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_counts_characters_not_bytes() {
        assert_eq!(bounded(" héllo ", 1, 5), Ok("héllo".into()));
        assert!(bounded("héllo!", 1, 5).is_err());
        assert_eq!(bounded("", 1, 5), Err("must not be empty".into()));
        assert_eq!(
            bounded("ab", 3, 5),
            Err("must be at least 3 characters".into())
        );
    }

    #[test]
    fn optional_maps_blank_to_none() {
        assert_eq!(optional(None, 5), Ok(None));
        assert_eq!(optional(Some("  "), 5), Ok(None));
        assert_eq!(optional(Some(" a "), 5), Ok(Some("a".into())));
        assert!(optional(Some("abcdef"), 5).is_err());
    }
}
