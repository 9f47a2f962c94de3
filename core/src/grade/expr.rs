//! A parser for the plain-text expressions the normaliser produces, reading them the way the
//! reference grader's sympy `parse_expr` does (Python tokens, standard transformations and implicit
//! multiplication): `2x^2` is `2*x**2`, `1/2x` is `(1/2)*x`, `xy` is `x*y`, `x2` is `2*x`, `pi` is
//! the constant, `e` and `i` are plain variables, `5!` is a factorial, `2j` is imaginary.

/// A parsed expression.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Expr {
    /// An integer literal (decimal digits).
    Int(String),
    /// A decimal literal such as `0.5` or `1e-3`, kept as written.
    Float(String),
    /// An imaginary literal `<n>j`, i.e. `n * I`.
    Imag(f64),
    /// A variable.
    Sym(String),
    /// `pi`.
    Pi,
    /// `oo`, `zoo` or `nan`: never equal to anything.
    NonFinite,
    Neg(Box<Expr>),
    Add(Box<Expr>, Box<Expr>),
    Sub(Box<Expr>, Box<Expr>),
    Mul(Box<Expr>, Box<Expr>),
    Div(Box<Expr>, Box<Expr>),
    FloorDiv(Box<Expr>, Box<Expr>),
    Pow(Box<Expr>, Box<Expr>),
    Sqrt(Box<Expr>),
    Ln(Box<Expr>),
    /// `n!` (`double == false`) or `n!!`.
    Factorial(Box<Expr>, bool),
    /// Python's `&` and `|`: bitwise on integers (anything else cannot be subtracted).
    BitAnd(Box<Expr>, Box<Expr>),
    BitOr(Box<Expr>, Box<Expr>),
}

impl Expr {
    /// The direct subexpressions.
    pub(crate) fn children(&self) -> Vec<&Expr> {
        match self {
            Expr::Neg(a) | Expr::Sqrt(a) | Expr::Ln(a) | Expr::Factorial(a, _) => vec![a],
            Expr::Add(a, b)
            | Expr::Sub(a, b)
            | Expr::Mul(a, b)
            | Expr::Div(a, b)
            | Expr::FloorDiv(a, b)
            | Expr::Pow(a, b)
            | Expr::BitAnd(a, b)
            | Expr::BitOr(a, b) => vec![a, b],
            _ => Vec::new(),
        }
    }
}

/// Longest expression (in tokens) that is evaluated.
const MAX_TOKENS: usize = 1000;

/// Deepest expression tree that is evaluated: every pass over it recurses per level (a 400-term sum
/// overflowed a 2 MiB stack in a debug build); real answers are a few levels deep.
const MAX_DEPTH: usize = 100;

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Int(String),
    Float(String),
    Imag(f64),
    /// A name after the sympy treatment: a variable, constant or function.
    Name(String),
    Op(&'static str),
}

/// Names sympy's namespace gives a meaning of its own; the ones without an implementation here make
/// the expression unsupported (the grader then answers "not equal").
const SYMPY_NAMES: [&str; 21] = [
    "sqrt", "ln", "pi", "oo", "zoo", "nan", "all", "csc", "eye", "ff", "fft", "fu", "gff", "id", "im", "jn",
    "li", "ntt", "re", "rf", "yn",
];

/// Greek letter names sympy keeps whole instead of splitting into letters.
const GREEK: [&str; 23] = [
    "alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa", "lamda", "mu",
    "nu", "xi", "omicron", "rho", "sigma", "tau", "upsilon", "phi", "chi", "psi", "omega",
];

const KEYWORDS: [&str; 35] = [
    "False", "None", "True", "and", "as", "assert", "async", "await", "break", "class", "continue", "def",
    "del", "elif", "else", "except", "finally", "for", "from", "global", "if", "import", "in", "is",
    "lambda", "nonlocal", "not", "or", "pass", "raise", "return", "try", "while", "with", "yield",
];

fn digits_run(c: &[char], mut i: usize) -> usize {
    // Python allows single underscores between digits.
    while i < c.len()
        && (c[i].is_ascii_digit() || c[i] == '_' && c.get(i + 1).is_some_and(char::is_ascii_digit))
    {
        i += 1;
    }
    i
}

/// Length of Python's number token at `i` (point float, exponent float, or int), 0 if none.
fn number_len(c: &[char], i: usize) -> (usize, bool) {
    let int_end = digits_run(c, i);
    let mut end = int_end;
    let mut float = false;
    if c.get(end) == Some(&'.') && (int_end > i || c.get(end + 1).is_some_and(char::is_ascii_digit)) {
        end = digits_run(c, end + 1);
        float = true;
    }
    if end == i {
        return (0, false);
    }
    if matches!(c.get(end), Some('e' | 'E')) {
        let mut k = end + 1;
        if matches!(c.get(k), Some('+' | '-')) {
            k += 1;
        }
        if c.get(k).is_some_and(char::is_ascii_digit) {
            end = digits_run(c, k);
            float = true;
        }
    }
    if !float && c[i] == '0' && !matches!(c.get(end), Some('j' | 'J')) {
        // Python's decimal ints cannot have leading zeros: "012" reads as "0" then "12".
        end = i + 1;
        while c.get(end) == Some(&'0') {
            end += 1;
        }
    }
    (end - i, float)
}

/// Splits a name the way sympy's `split_symbols` does: letters become separate variables and digit
/// runs numbers, unless the name is known to sympy, a Greek letter name, or contains `_`.
fn push_name(name: &str, out: &mut Vec<Tok>) -> Result<(), ()> {
    if KEYWORDS.contains(&name) {
        return Err(());
    }
    let chars: Vec<char> = name.chars().collect();
    if SYMPY_NAMES.contains(&name) || GREEK.contains(&name) || name.contains('_') || chars.len() == 1 {
        out.push(Tok::Name(name.to_string()));
        return Ok(());
    }
    let mut i = 0;
    while i < chars.len() {
        if chars[i].is_ascii_digit() {
            let end = chars[i..].iter().position(|c| !c.is_ascii_digit()).map_or(chars.len(), |p| i + p);
            let run: String = chars[i..end].iter().collect();
            // sympy re-reads the digits as a Python literal, where `01` is a syntax error.
            if run.starts_with('0') && !run.trim_start_matches('0').is_empty() {
                return Err(());
            }
            out.push(Tok::Int(run));
            i = end;
        } else {
            out.push(Tok::Name(chars[i].to_string()));
            i += 1;
        }
    }
    Ok(())
}

fn tokenize(s: &str) -> Result<Vec<Tok>, ()> {
    let c: Vec<char> = s.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < c.len() {
        let ch = c[i];
        if matches!(ch, ' ' | '\t') {
            i += 1;
        } else if ch.is_ascii_digit() || ch == '.' && c.get(i + 1).is_some_and(char::is_ascii_digit) {
            let (len, float) = number_len(&c, i);
            let text: String = c[i..i + len].iter().filter(|&&d| d != '_').collect();
            i += len;
            if matches!(c.get(i), Some('j' | 'J')) {
                // sympy re-reads the digits of `2j` as an integer literal: `0002j` fails there.
                if !float && text.len() > 1 && text.starts_with('0') {
                    return Err(());
                }
                out.push(Tok::Imag(text.parse().map_err(|_| ())?));
                i += 1;
            } else {
                out.push(if float { Tok::Float(text) } else { Tok::Int(text) });
            }
        } else if ch.is_alphabetic() || ch == '_' {
            let start = i;
            while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                i += 1;
            }
            push_name(&c[start..i].iter().collect::<String>(), &mut out)?;
        } else {
            let two: String = c[i..(i + 2).min(c.len())].iter().collect();
            let op = match two.as_str() {
                "**" => "**",
                "//" => "//",
                "!=" => return Err(()),
                _ => match ch {
                    '+' => "+",
                    '-' => "-",
                    '*' => "*",
                    '/' => "/",
                    '(' => "(",
                    ')' => ")",
                    '!' => "!",
                    '&' => "&",
                    '|' => "|",
                    // Commas, brackets, comparisons and the like: not an expression sympy can subtract.
                    _ => return Err(()),
                },
            };
            i += op.len();
            out.push(Tok::Op(op));
        }
    }
    Ok(out)
}

struct Parser {
    toks: Vec<Tok>,
    i: usize,
    /// Nesting of the recursive calls now (parentheses, signs, exponents, function arguments).
    depth: usize,
}

type PResult = Result<Expr, ()>;

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.i)
    }

    fn eat(&mut self, op: &str) -> bool {
        if matches!(self.peek(), Some(Tok::Op(o)) if *o == op) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    /// `|` binds loosest, then `&`, then `+`/`-`, as in Python.
    fn expr(&mut self) -> PResult {
        let mut lhs = self.and_expr()?;
        while self.eat("|") {
            lhs = Expr::BitOr(Box::new(lhs), Box::new(self.and_expr()?));
        }
        Ok(lhs)
    }

    fn and_expr(&mut self) -> PResult {
        let mut lhs = self.sum()?;
        while self.eat("&") {
            lhs = Expr::BitAnd(Box::new(lhs), Box::new(self.sum()?));
        }
        Ok(lhs)
    }

    fn sum(&mut self) -> PResult {
        let mut lhs = self.term()?;
        loop {
            if self.eat("+") {
                lhs = Expr::Add(Box::new(lhs), Box::new(self.term()?));
            } else if self.eat("-") {
                lhs = Expr::Sub(Box::new(lhs), Box::new(self.term()?));
            } else {
                return Ok(lhs);
            }
        }
    }

    fn starts_atom(&self) -> bool {
        matches!(self.peek(), Some(Tok::Int(_) | Tok::Float(_) | Tok::Imag(_) | Tok::Name(_) | Tok::Op("(")))
    }

    fn term(&mut self) -> PResult {
        let mut lhs = self.unary()?;
        loop {
            lhs = if self.eat("*") {
                Expr::Mul(Box::new(lhs), Box::new(self.unary()?))
            } else if self.eat("/") {
                Expr::Div(Box::new(lhs), Box::new(self.unary()?))
            } else if self.eat("//") {
                Expr::FloorDiv(Box::new(lhs), Box::new(self.unary()?))
            } else if self.starts_atom() {
                // Implicit multiplication: sympy inserts `*` between adjacent operands.
                Expr::Mul(Box::new(lhs), Box::new(self.power()?))
            } else {
                return Ok(lhs);
            };
        }
    }

    /// Runs `f` one level deeper; an error past [`MAX_DEPTH`].
    fn nested(&mut self, f: impl FnOnce(&mut Self) -> PResult) -> PResult {
        if self.depth >= MAX_DEPTH {
            return Err(());
        }
        self.depth += 1;
        let e = f(self);
        self.depth -= 1;
        e
    }

    fn unary(&mut self) -> PResult {
        self.nested(Self::unary_inner)
    }

    fn unary_inner(&mut self) -> PResult {
        if self.eat("-") {
            return Ok(Expr::Neg(Box::new(self.unary()?)));
        }
        if self.eat("+") {
            return self.unary();
        }
        self.power()
    }

    fn power(&mut self) -> PResult {
        let base = self.postfix()?;
        if self.eat("**") {
            // As in Python, the exponent may carry its own sign and binds to the right.
            return Ok(Expr::Pow(Box::new(base), Box::new(self.unary()?)));
        }
        Ok(base)
    }

    fn postfix(&mut self) -> PResult {
        let mut e = self.atom()?;
        while self.eat("!") {
            let double = self.eat("!");
            e = Expr::Factorial(Box::new(e), double);
        }
        Ok(e)
    }

    fn atom(&mut self) -> PResult {
        let tok = self.peek().cloned().ok_or(())?;
        self.i += 1;
        match tok {
            Tok::Int(s) => Ok(Expr::Int(s)),
            Tok::Float(s) => Ok(Expr::Float(s)),
            Tok::Imag(v) => Ok(Expr::Imag(v)),
            Tok::Op("(") => {
                let e = self.nested(Self::expr)?;
                if self.eat(")") { Ok(e) } else { Err(()) }
            }
            Tok::Op(_) => Err(()),
            Tok::Name(n) => match n.as_str() {
                "pi" => Ok(Expr::Pi),
                "oo" | "zoo" | "nan" => Ok(Expr::NonFinite),
                "sqrt" | "ln" => {
                    if !self.eat("(") {
                        return Err(());
                    }
                    let arg = Box::new(self.nested(Self::expr)?);
                    if !self.eat(")") {
                        return Err(());
                    }
                    Ok(if n == "sqrt" { Expr::Sqrt(arg) } else { Expr::Ln(arg) })
                }
                _ if SYMPY_NAMES.contains(&n.as_str()) => Err(()),
                _ => Ok(Expr::Sym(n)),
            },
        }
    }
}

/// Parses an expression; `None` where sympy would fail or where it means something this grader does
/// not evaluate (tuples, comparisons, special functions).
pub(crate) fn parse(s: &str) -> Option<Expr> {
    let toks = tokenize(&s.replace('^', "**")).ok()?;
    // Bounds the depth of the recursive parser and evaluators; real answers are far shorter.
    if toks.len() > MAX_TOKENS {
        return None;
    }
    let mut p = Parser { toks, i: 0, depth: 0 };
    let e = p.expr().ok()?;
    (p.i == p.toks.len() && depth(&e) <= MAX_DEPTH).then_some(e)
}

/// Levels of `e`, counted without recursion (`1+1+..+1` grows a level a term without nesting calls).
fn depth(e: &Expr) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(e, 1)];
    while let Some((e, d)) = stack.pop() {
        deepest = deepest.max(d);
        stack.extend(e.children().into_iter().map(|c| (c, d + 1)));
    }
    deepest
}

#[cfg(test)]
mod tests {
    use super::Expr::*;
    use super::*;

    fn b(e: Expr) -> Box<Expr> {
        Box::new(e)
    }

    #[test]
    fn implicit_multiplication_and_precedence() {
        let x = || Sym("x".into());
        let n = |s: &str| Int(s.into());
        assert_eq!(parse("2x^2"), Some(Mul(b(n("2")), b(Pow(b(x()), b(n("2")))))));
        assert_eq!(parse("1/2x"), Some(Mul(b(Div(b(n("1")), b(n("2")))), b(x()))));
        assert_eq!(parse("-2^2"), Some(Neg(b(Pow(b(n("2")), b(n("2")))))));
        assert_eq!(parse("x2"), Some(Mul(b(x()), b(n("2")))));
        assert_eq!(parse("xy"), Some(Mul(b(x()), b(Sym("y".into())))));
        assert_eq!(parse("012"), Some(Mul(b(n("0")), b(n("12")))));
        assert_eq!(parse("sqrt(2)x"), Some(Mul(b(Sqrt(b(n("2")))), b(x()))));
        assert_eq!(parse("5!"), Some(Factorial(b(n("5")), false)));
        assert_eq!(parse("2pi"), Some(Mul(b(n("2")), b(Pi))));
        assert_eq!(parse("1.5"), Some(Float("1.5".into())));
        assert_eq!(parse("2j"), Some(Imag(2.0)));
    }

    #[test]
    fn rejects_what_sympy_cannot_subtract() {
        for s in [
            "(1,2)", "x<3", "x=3", "2in", "x01", "x\ny", "[1]", "(1", "1)", "sqrt", "re(x)", "a!=b", "", "√2",
        ] {
            assert_eq!(parse(s), None, "{s}");
        }
    }
}
