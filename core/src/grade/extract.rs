//! Answer extraction: the last `\boxed{...}` of a response, and the answer of a ground-truth field.

const BOXED: &str = "\\boxed{";

/// The content of the LAST `\boxed{` in `text`, up to its matching closing brace, with surrounding
/// whitespace trimmed; `None` when there is no `\boxed{` or the last one is never closed.
///
/// Only the literal `\boxed{` opens an answer: `\boxed {5}` and `\fbox{4}` do not, as in the reference
/// grader. The last occurrence is taken even if an earlier one was complete, because a response that
/// ends in an unclosed box (cut off by the length budget) has no final answer.
pub fn extract_boxed(text: &str) -> Option<String> {
    let start = text.rfind(BOXED)? + BOXED.len();
    let mut depth = 0usize;
    for (i, c) in text[start..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => return Some(text[start..start + i].trim().to_string()),
            '}' => depth -= 1,
            _ => {}
        }
    }
    None
}

/// The answer string of a ground-truth field:
/// - GSM8K style (`... #### 1,234`): the text after the last `####`, with thousands separators
///   removed when what remains is a number;
/// - a worked solution (MATH style): the content of its last `\boxed{}`;
/// - anything else (a plain answer such as `42` or `\frac{1}{2}`): the trimmed text.
pub fn parse_ground_truth(raw: &str) -> String {
    if let Some(pos) = raw.rfind("####") {
        let ans = raw[pos + 4..].trim();
        let plain = ans.replace(',', "");
        let numeric = !plain.is_empty() && plain.trim_start_matches(['-', '+', '$']).parse::<f64>().is_ok();
        return if numeric { plain } else { ans.to_string() };
    }
    if let Some(boxed) = extract_boxed(raw) {
        return boxed;
    }
    raw.trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_balanced_box() {
        assert_eq!(extract_boxed("a \\boxed{1} b \\boxed{x^{2}}.").as_deref(), Some("x^{2}"));
        assert_eq!(extract_boxed("\\boxed{ 5 }").as_deref(), Some("5"));
        assert_eq!(extract_boxed("\\boxed{}").as_deref(), Some(""));
        assert_eq!(extract_boxed("\\boxed{3} then \\boxed{unclosed"), None);
        assert_eq!(extract_boxed("\\boxed {5}"), None);
        assert_eq!(extract_boxed("\\fbox{4}"), None);
        assert_eq!(extract_boxed("}{ \\boxed{é{ü}}").as_deref(), Some("é{ü}"));
        assert_eq!(extract_boxed(""), None);
    }

    #[test]
    fn ground_truths() {
        assert_eq!(parse_ground_truth("She pays 6 * 7 = 42.\n#### 42"), "42");
        assert_eq!(parse_ground_truth("#### 1,234"), "1234");
        assert_eq!(parse_ground_truth("#### -5"), "-5");
        assert_eq!(parse_ground_truth("#### (1, 2)"), "(1, 2)");
        assert_eq!(parse_ground_truth("so the answer is $\\boxed{\\frac{1}{2}}$."), "\\frac{1}{2}");
        assert_eq!(parse_ground_truth("  42 "), "42");
        assert_eq!(parse_ground_truth("1,000"), "1,000");
    }
}
