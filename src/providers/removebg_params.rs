//! remove.bg's own parameter syntax (`crop_margin`, `scale`, `position`,
//! `roi`: lengths such as `30px` and `10%`), checked in one place. It is shared
//! because Uploadcare's Remove.bg add-on forwards these parameters to remove.bg
//! unchanged, so a value either provider accepts must be one remove.bg takes,
//! and both must refuse the same values before anything is uploaded or billed.

/// A length as remove.bg writes it: whole pixels (`30px`) or a percentage
/// from 0 to 100 (`12.5%`).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Length {
    Pixels(u32),
    Percent(f64),
}

fn parse_length(token: &str) -> Option<Length> {
    if let Some(pixels) = token.strip_suffix("px") {
        let digits_only = pixels.bytes().all(|b| b.is_ascii_digit());
        return digits_only
            .then(|| pixels.parse().ok())
            .flatten()
            .map(Length::Pixels);
    }
    parse_percent(token).map(Length::Percent)
}

/// A plain non-negative decimal (`12`, `12.5`): no sign, exponent or `inf`,
/// which `f64::from_str` would take but the service would not.
fn parse_decimal(text: &str) -> Option<f64> {
    let (whole, fraction) = match text.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (text, None),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || fraction.is_some_and(|f| !digits(f)) {
        return None;
    }
    text.parse().ok()
}

/// `NN%` with NN a plain decimal from 0 to 100.
fn parse_percent(token: &str) -> Option<f64> {
    parse_decimal(token.strip_suffix('%')?).filter(|p| *p <= 100.0)
}

/// `crop_margin`: one, two or four lengths (all sides; vertical and
/// horizontal; top, right, bottom and left).
pub(super) fn validate_crop_margin(value: &str) -> Result<(), String> {
    let tokens: Vec<_> = value.split_whitespace().collect();
    let lengths_ok = tokens.iter().all(|t| parse_length(t).is_some());
    if matches!(tokens.len(), 1 | 2 | 4) && lengths_ok {
        Ok(())
    } else {
        Err(format!(
            "expected 1, 2 or 4 lengths such as `30px` or `10%`, not `{value}`"
        ))
    }
}

/// `scale`: `original`, or the subject's size from 10% to 100% of the image.
pub(super) fn validate_scale(value: &str) -> Result<(), String> {
    if value == "original" || parse_percent(value).is_some_and(|p| p >= 10.0) {
        Ok(())
    } else {
        Err(format!(
            "expected `original` or a percentage from 10% to 100%, such as 80%, not `{value}`"
        ))
    }
}

/// `position`: `original`, `center`, or one percentage for both axes or two
/// (horizontal, vertical).
pub(super) fn validate_position(value: &str) -> Result<(), String> {
    let tokens: Vec<_> = value.split_whitespace().collect();
    let named = matches!(tokens.as_slice(), ["original"] | ["center"]);
    let percentages =
        matches!(tokens.len(), 1 | 2) && tokens.iter().all(|t| parse_percent(t).is_some());
    if named || percentages {
        Ok(())
    } else {
        Err(format!(
            "expected `original`, `center`, or one or two percentages such as `50% 100%`, not `{value}`"
        ))
    }
}

/// `roi`: the corners `x1 y1 x2 y2` of the region that may hold the
/// foreground, the second right of and below the first where both are in the
/// same unit (mixed units cannot be compared without the image's size).
pub(super) fn validate_roi(value: &str) -> Result<(), String> {
    let wrong = || {
        format!("expected `x1 y1 x2 y2`, each in px or %, such as `0% 0% 100% 100%`, not `{value}`")
    };
    let lengths: Vec<_> = value
        .split_whitespace()
        .map(parse_length)
        .collect::<Option<_>>()
        .ok_or_else(wrong)?;
    let [x1, y1, x2, y2] = lengths.as_slice() else {
        return Err(wrong());
    };
    let before = |a: &Length, b: &Length| match (a, b) {
        (Length::Pixels(a), Length::Pixels(b)) => a < b,
        (Length::Percent(a), Length::Percent(b)) => a < b,
        _ => true,
    };
    if before(x1, x2) && before(y1, y2) {
        Ok(())
    } else {
        Err(format!(
            "the second corner must lie right of and below the first, as in `x1 y1 x2 y2`: `{value}`"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crop_margin_takes_one_two_or_four_lengths_in_pixels_or_percent() {
        for good in [
            "30px",
            "10%",
            "12.5%",
            "0px",
            "10px 20px",
            "10px 5%",
            "1px 2% 3px 4%",
        ] {
            assert!(validate_crop_margin(good).is_ok(), "{good}");
        }
        for bad in [
            "30",
            "ten%",
            "-5px",
            "+5px",
            "30 px",
            "1e3px",
            "12.5px",
            "abc",
            "150%",
            "px",
            ".5%",
            "1px 2px 3px",
            "",
        ] {
            assert!(validate_crop_margin(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn scale_is_original_or_ten_to_a_hundred_percent() {
        for good in ["original", "10%", "80%", "100%", "55.5%"] {
            assert!(validate_scale(good).is_ok(), "{good}");
        }
        for bad in [
            "5%", "101%", "120%", "80", "0.8", "80px", "big", "Original", "1e1%", "inf%",
        ] {
            assert!(validate_scale(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn position_is_a_name_or_one_or_two_percentages() {
        for good in ["original", "center", "50%", "50% 30%", "0% 100%"] {
            assert!(validate_position(good).is_ok(), "{good}");
        }
        for bad in [
            "left",
            "50",
            "50px",
            "1% 2% 3%",
            "center 50%",
            "120%",
            "150%",
            "",
        ] {
            assert!(validate_position(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn roi_is_two_corners_in_order_each_in_pixels_or_percent() {
        for good in [
            "0% 0% 100% 100%",
            "10px 20px 300px 400px",
            "10px 10% 90% 200px",
            "0px 0% 50.5% 100px",
        ] {
            assert!(validate_roi(good).is_ok(), "{good}");
        }
        for bad in [
            "0% 0% 100%",
            "a b c d",
            "100px 0px 10px 50px",
            "0% 50% 100% 20%",
            "0 0 10 10",
            "0% 0% 100% 101%",
            "",
            "0% 0% 100% 100% 1%",
        ] {
            assert!(validate_roi(bad).is_err(), "{bad}");
        }
    }
}
