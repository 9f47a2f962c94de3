//! String normalisation of answers, in two passes as the reference grader does:
//! [`mathd`] (the Hendrycks MATH `strip_string`) and [`normalize`] (the PRM800K normaliser, which
//! also turns LaTeX into plain text for the expression parser). The rules are reproduced literally,
//! quirks included, because the verdicts must agree with the reference grader.

use super::latex::latex_to_text;

/// Units the reference normaliser deletes (with an optional plural and power).
const UNITS: [&str; 16] = [
    "degree",
    "cm",
    "centimeter",
    "meter",
    "mile",
    "second",
    "minute",
    "hour",
    "day",
    "week",
    "month",
    "year",
    "foot",
    "feet",
    "inch",
    "yard",
];

/// `text` without Python's `str.strip()` whitespace.
pub(crate) fn py_strip(s: &str) -> &str {
    s.trim_matches(char::is_whitespace)
}

/// Python's `float(s)`: surrounding whitespace, `_` between digits, `inf`/`nan` accepted.
pub(crate) fn py_float(s: &str) -> Option<f64> {
    let s = py_strip(s);
    let b = s.as_bytes();
    for (i, &c) in b.iter().enumerate() {
        if c == b'_' && !(i > 0 && b[i - 1].is_ascii_digit() && b.get(i + 1).is_some_and(u8::is_ascii_digit))
        {
            return None;
        }
    }
    s.replace('_', "").parse::<f64>().ok()
}

/// The reference `_is_int` on a float: within 1e-7 of an integer (never for inf or NaN).
pub(crate) fn near_int(x: f64) -> bool {
    x.is_finite() && (x - x.round()).abs() <= 1e-7
}

/// Python's `str(int(x))` for an integral float: exact, however large.
pub(crate) fn int_string(x: f64) -> String {
    let x = x.trunc();
    if x.abs() < 1e18 {
        return format!("{}", x as i64);
    }
    // x = m * 2^e with e > 0: double a little-endian decimal digit vector e times.
    let bits = x.abs().to_bits();
    let exp = ((bits >> 52) & 0x7ff) as i64 - 1075;
    let mut digits: Vec<u8> =
        ((bits & ((1u64 << 52) - 1)) | (1u64 << 52)).to_string().bytes().rev().map(|d| d - b'0').collect();
    for _ in 0..exp.max(0) {
        let mut carry = 0;
        for d in digits.iter_mut() {
            let v = *d * 2 + carry;
            *d = v % 10;
            carry = v / 10;
        }
        if carry > 0 {
            digits.push(carry);
        }
    }
    let sign = if x < 0.0 { "-" } else { "" };
    sign.to_string() + &digits.iter().rev().map(|d| char::from(b'0' + d)).collect::<String>()
}

/// Removes thousands separators that are properly formatted (`1,234`), leaving tuple commas alone.
///
/// The reference's loop of `re.sub` passes; it ends after three passes at most, whatever the input
/// (linear time): removing a comma never makes another one match, and the only comma a pass skips
/// is the one its previous match consumed as `($|\D)`, which the next pass removes or never will.
pub(crate) fn strip_properly_formatted_commas(s: &str) -> String {
    let mut cur: Vec<char> = s.chars().collect();
    loop {
        let mut out = Vec::with_capacity(cur.len());
        let mut i = 0;
        while i < cur.len() {
            let d = |k: usize| cur.get(k).is_some_and(char::is_ascii_digit);
            let tail_ok = i + 5 == cur.len() || (i + 5 < cur.len() && !d(i + 5));
            if d(i) && cur.get(i + 1) == Some(&',') && d(i + 2) && d(i + 3) && d(i + 4) && tail_ok {
                out.extend([cur[i], cur[i + 2], cur[i + 3], cur[i + 4]]);
                out.extend(cur.get(i + 5));
                i += 6;
            } else {
                out.push(cur[i]);
                i += 1;
            }
        }
        if out == cur {
            return out.into_iter().collect();
        }
        cur = out;
    }
}

/// The reference `_str_is_int`: a number (after thousands separators) within 1e-7 of an integer.
pub(crate) fn str_is_int(s: &str) -> bool {
    py_float(&strip_properly_formatted_commas(s)).is_some_and(near_int)
}

/// Inner text of `\text{...}` spanning the whole string (Python `$` also allows one final newline).
fn whole_text_macro(s: &str) -> Option<&str> {
    let rest = s.strip_prefix("\\text{")?;
    let inner = rest.strip_suffix("}\n").or_else(|| rest.strip_suffix('}'))?;
    (!inner.is_empty() && !inner.contains('\n')).then_some(inner)
}

/// Hendrycks' `_fix_sqrt`: `\sqrt3` -> `\sqrt{3}`. `Err` where the original raises.
fn fix_sqrt(s: &str) -> Result<String, ()> {
    let mut parts = s.split("\\sqrt");
    let mut out = parts.next().unwrap_or("").to_string();
    for part in parts {
        let mut chars = part.chars();
        let first = chars.next().ok_or(())?;
        if first == '{' {
            out.push_str("\\sqrt");
            out.push_str(part);
        } else {
            out.push_str(&format!("\\sqrt{{{first}}}{}", chars.as_str()));
        }
    }
    Ok(out)
}

/// Hendrycks' `_fix_fracs`: `\frac12` -> `\frac{1}{2}`, `\frac1{72}` -> `\frac{1}{72}`.
fn fix_fracs(s: &str) -> Result<String, ()> {
    let mut parts = s.split("\\frac");
    let mut out = parts.next().unwrap_or("").to_string();
    for part in parts {
        out.push_str("\\frac");
        let chars: Vec<char> = part.chars().collect();
        match chars.as_slice() {
            [] => return Err(()),
            ['{', ..] => out.push_str(part),
            [_] => return Ok(s.to_string()),
            [a, '{', rest @ ..] => out.push_str(&format!("{{{a}}}{{{}", rest.iter().collect::<String>())),
            [a, b, rest @ ..] => out.push_str(&format!("{{{a}}}{{{b}}}{}", rest.iter().collect::<String>())),
        }
    }
    Ok(out)
}

/// Whether `s` is what Python prints for an int (`0`, `-12`; not `012`, `+1`, `-0`).
fn canonical_int(s: &str) -> bool {
    let digits = s.strip_prefix('-').unwrap_or(s);
    !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" && !s.starts_with('-') || !digits.starts_with('0'))
}

/// Hendrycks' `_fix_a_slash_b`: `3/4` -> `\frac{3}{4}` for plain integers only.
fn fix_a_slash_b(s: String) -> String {
    match s.split('/').collect::<Vec<_>>().as_slice() {
        [a, b] if canonical_int(a) && canonical_int(b) => format!("\\frac{{{a}}}{{{b}}}"),
        _ => s,
    }
}

/// Hendrycks' `_strip_string`; `Err` where the original raises (then the caller keeps its input).
fn strip_string(s: &str) -> Result<String, ()> {
    let mut s = s.replace('\n', "").replace("\\!", "").replace("\\\\", "\\");
    s = s.replace("tfrac", "frac").replace("dfrac", "frac");
    s = s.replace("\\left", "").replace("\\right", "");
    s = s.replace("^{\\circ}", "").replace("^\\circ", "").replace("\\$", "");
    // Units on the right: "\text{ " only ever introduces units in MATH.
    match s.matches("\\text{ ").count() {
        0 => {}
        1 => s = s.split("\\text{ ").next().unwrap_or("").to_string(),
        _ => return Err(()),
    }
    s = s.replace("\\%", "").replace('%', "");
    s = s.replace(" .", " 0.").replace("{.", "{0.");
    if s.is_empty() {
        return Ok(s);
    }
    if s.starts_with('.') {
        s.insert(0, '0');
    }
    // "x = 5" -> "5" for a short left-hand side.
    if let [lhs, rhs] = s.split('=').collect::<Vec<_>>().as_slice()
        && lhs.chars().count() <= 2
    {
        s = rhs.to_string();
    }
    s = fix_sqrt(&s)?.replace(' ', "");
    s = fix_fracs(&s)?;
    if s == "0.5" {
        s = "\\frac{1}{2}".to_string();
    }
    Ok(fix_a_slash_b(s))
}

/// The MATH-dataset normal form of an answer (`normalize_answer` of the reference grader).
pub fn mathd(answer: &str) -> String {
    let mut a = py_strip(answer);
    if let Some(inner) = whole_text_macro(a) {
        a = py_strip(inner);
    }
    strip_string(a).unwrap_or_else(|()| a.to_string())
}

/// Deletes each unit word, with an optional `es`/`s`, trailing spaces and `^2`-style power.
fn remove_units(s: &str) -> String {
    let mut cur = s.to_string();
    for unit in UNITS {
        let mut out = String::with_capacity(cur.len());
        let mut rest = cur.as_str();
        while let Some(pos) = rest.find(unit) {
            out.push_str(&rest[..pos]);
            let mut r = &rest[pos + unit.len()..];
            r = r.strip_prefix("es").unwrap_or(r);
            r = r.strip_prefix('s').unwrap_or(r);
            r = r.trim_start_matches(' ');
            if let Some(p) = r.strip_prefix('^') {
                let digits = p.len() - p.trim_start_matches(|c: char| c.is_ascii_digit()).len();
                if digits > 0 {
                    r = &p[digits..];
                }
            }
            rest = r;
        }
        out.push_str(rest);
        cur = out;
    }
    cur
}

/// `re.sub(pattern, repl, s)` for `<lead> *<tail>` patterns: `lead`, spaces, then `tail` become `repl`.
fn remove_spaced(s: &str, lead: &str, tail: &str, repl: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(pos) = rest.find(lead) {
        let after = rest[pos + lead.len()..].trim_start_matches(' ');
        if let Some(r) = after.strip_prefix(tail) {
            out.push_str(&rest[..pos]);
            out.push_str(repl);
            rest = r;
        } else {
            out.push_str(&rest[..pos + lead.len()]);
            rest = &rest[pos + lead.len()..];
        }
    }
    out.push_str(rest);
    out
}

/// `7 3/4` -> `7+3/4`: a digit, spaces, a digit become a sum (the mixed-number rule), matching
/// left to right without overlap as `re.sub` does.
fn inject_mixed_numbers(s: &str) -> String {
    let c: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < c.len() {
        if c[i].is_ascii_digit() {
            let mut j = i + 1;
            while j < c.len() && c[j] == ' ' {
                j += 1;
            }
            if j > i + 1 && j < c.len() && c[j].is_ascii_digit() {
                out.push(c[i]);
                out.push('+');
                out.push(c[j]);
                i = j + 1;
                continue;
            }
        }
        out.push(c[i]);
        i += 1;
    }
    out
}

/// `_parse_latex` of the reference: LaTeX to the plain text its expression parser reads.
fn parse_latex(expr: &str) -> Option<String> {
    let expr = expr.replace("\\tfrac", "\\frac").replace("\\dfrac", "\\frac").replace("\\frac", " \\frac");
    let text = latex_to_text(&expr).ok()?;
    let text = text.replace('√', "sqrt").replace('π', "pi").replace('∞', "inf").replace('∪', "U");
    Some(py_strip(&text.replace(['·', '×'], "*")).to_string())
}

/// The PRM800K normal form of an answer (`_normalize` of the reference grader): plain text, no
/// spaces or braces, lower case, integers canonical.
pub fn normalize(expr: &str) -> String {
    let mut e = whole_text_macro(expr).unwrap_or(expr).to_string();
    e = e.replace("\\%", "%").replace("\\$", "$").replace(['$', '%'], "");
    e = e.replace(" or ", " , ").replace(" and ", " , ");
    e = e.replace("million", "*10^6").replace("billion", "*10^9").replace("trillion", "*10^12");
    e = remove_units(&e);
    e = remove_spaced(&e, "^", "\\circ", "");
    if e.len() >= 2 && e.starts_with('{') && e.ends_with('}') {
        e = e[1..e.len() - 1].to_string();
    }
    e = remove_spaced(&e, ",\\!", "", "");
    if let Some(x) = py_float(&e).filter(|&x| near_int(x)) {
        e = int_string(x.round());
    }
    if let Some(text) = e.contains('\\').then(|| parse_latex(&e)).flatten() {
        e = text;
    }
    e = remove_spaced(&e, "-", "", "-");
    e = inject_mixed_numbers(&e);
    e = e.replace([' ', '{', '}'], "").to_lowercase();
    if let Some(x) = str_is_int(&e).then(|| py_float(&e.replace(',', ""))).flatten() {
        e = int_string(x);
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mathd_rules() {
        assert_eq!(mathd("\\dfrac{3}{4}"), "\\frac{3}{4}");
        assert_eq!(mathd("\\frac12"), "\\frac{1}{2}");
        assert_eq!(mathd("x = 5"), "5");
        assert_eq!(mathd("5\\text{ cm}"), "5");
        assert_eq!(mathd("90^\\circ"), "90");
        assert_eq!(mathd("\\left(1, 2\\right)"), "(1,2)");
        assert_eq!(mathd("6/8"), "\\frac{6}{8}");
        assert_eq!(mathd("0.5"), "\\frac{1}{2}");
        assert_eq!(mathd(".5"), "\\frac{1}{2}");
        assert_eq!(mathd(".25"), "0.25");
        assert_eq!(mathd("\\sqrt3"), "\\sqrt{3}");
        assert_eq!(
            mathd("1\\text{ a}\\text{ b}"),
            "1\\text{ a}\\text{ b}",
            "the original raises: input kept"
        );
        assert_eq!(mathd("\\frac"), "\\frac");
    }

    #[test]
    fn prm_rules() {
        assert_eq!(normalize("1,000"), "1000");
        assert_eq!(normalize("42.0"), "42");
        assert_eq!(normalize("1e3"), "1000");
        assert_eq!(normalize("012"), "12");
        assert_eq!(normalize("\\frac{1}{2}"), "1/2");
        assert_eq!(normalize("1\\frac{1}{2}"), "1+1/2");
        assert_eq!(normalize("\\sqrt{2}/2"), "sqrt(2)/2");
        assert_eq!(normalize("5 seconds"), "5");
        assert_eq!(normalize("3 m^2"), "3m^2");
        assert_eq!(normalize("- 7"), "-7");
        assert_eq!(normalize("\\text{(A)}"), "(a)");
        assert_eq!(normalize("1 or 2"), "1,2");
        assert_eq!(normalize("1e20"), "100000000000000000000");
    }

    #[test]
    fn comma_groups_take_linear_time() {
        // 100,000 groups: two passes remove every other comma, then the last one.
        let s = "1".to_string() + &",000".repeat(100_000);
        let start = std::time::Instant::now();
        assert_eq!(strip_properly_formatted_commas(&s).matches(',').count(), 49_999);
        assert_eq!(strip_properly_formatted_commas("1,000,000,000"), "1000,000000", "the reference's quirk");
        assert!(start.elapsed().as_secs_f64() < 5.0, "took {:?}", start.elapsed());
    }

    #[test]
    fn helpers() {
        assert_eq!(strip_properly_formatted_commas("1,000,000"), "1000000");
        assert_eq!(strip_properly_formatted_commas("(1,2)"), "(1,2)");
        assert_eq!(strip_properly_formatted_commas("1,0000"), "1,0000");
        assert_eq!(int_string(1e25), "10000000000000000905969664");
        assert_eq!(int_string(-3.0), "-3");
        assert_eq!(py_float(" 1_000 "), Some(1000.0));
        assert_eq!(py_float("1__0"), None);
        assert!(str_is_int("4.99999999") && !str_is_int("inf") && !str_is_int("x"));
        assert_eq!(inject_mixed_numbers("1 2 3"), "1+2 3");
    }
}
