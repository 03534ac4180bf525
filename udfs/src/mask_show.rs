//! Shared kernel of `show_first` / `show_last` (Ranger-style partial masks):
//! kept characters pass through, the others become `X` (upper-case letters),
//! `x` (lower-case letters), `n` (digits); anything else is kept.

/// The partial-mask class of a hidden character.
#[inline]
pub(crate) fn class_of(c: char) -> char {
    if c.is_uppercase() {
        'X'
    } else if c.is_lowercase() {
        'x'
    } else if c.is_numeric() {
        'n'
    } else {
        c
    }
}

/// Writes `value` with all but the first (`from_start`) or last `keep`
/// characters masked, at most `max` characters in all.
pub(crate) fn show_into(value: &str, keep: usize, from_start: bool, max: u32, out: &mut String) {
    let total = value.chars().count();
    let hidden_before = if from_start {
        0
    } else {
        total.saturating_sub(keep)
    };
    for (i, c) in value.chars().take(max as usize).enumerate() {
        let shown = if from_start {
            i < keep
        } else {
            i >= hidden_before
        };
        out.push(if shown { c } else { class_of(c) });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn show(v: &str, keep: usize, first: bool) -> String {
        let mut out = String::new();
        show_into(v, keep, first, u32::MAX, &mut out);
        out
    }

    #[test]
    fn show_last_keeps_the_tail() {
        assert_eq!(show("111-11-1111", 4, false), "nnn-nn-1111");
        assert_eq!(show("Ab1", 10, false), "Ab1");
        assert_eq!(show("Ab1-é", 0, false), "Xxn-x");
    }

    #[test]
    fn show_first_keeps_the_head() {
        assert_eq!(show("alice@x.com", 2, true), "alxxx@x.xxx");
    }
}
