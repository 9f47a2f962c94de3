//! LaTeX to plain text, the way pylatexenc's `LatexNodes2Text` renders answers for the reference
//! grader: `\frac{a}{b}` -> `a/b` (no parentheses, so `\frac{a+b}{c}` reads `a+b/c` there too),
//! `\sqrt[3]{x}` -> `√(x)`, symbols to Unicode (`\pi` -> `π`), text macros to their content, unknown
//! macros to nothing (their braces then render as plain groups), matrices to `[ a b; c d ]`.

use super::latex_macros::{arg_spec, render_macro};

/// The reference renderer raises on these inputs, and the grader then keeps the LaTeX as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LatexError;

/// Deepest brace nesting rendered, and deepest nesting of groups, arguments, environments and
/// `\(..\)` the parser recurses into (each level is a few stack frames).
const MAX_DEPTH: usize = 200;

/// Parser steps allowed per input character. A macro whose mandatory argument is missing makes the
/// parser re-read what it had taken as its arguments (as pylatexenc does), and nested ones re-read
/// exponentially often (`\frac{\frac{\frac{..`); real answers need two or three steps a character.
const STEPS_PER_CHAR: usize = 16;

#[derive(Debug, Clone)]
pub(super) enum Node {
    Char(char),
    Group(Vec<Node>),
    /// `args` is `None` when a mandatory argument was missing (then none are attached).
    Macro {
        name: String,
        args: Option<Vec<Option<Node>>>,
    },
    Env {
        name: String,
        body: Vec<Node>,
        closed: bool,
    },
    /// `\( ... \)` or `\[ ... \]`.
    Math {
        display: bool,
        body: Vec<Node>,
    },
    Special(&'static str),
}

#[derive(Clone, Copy, PartialEq)]
enum Stop<'a> {
    End,
    Brace,
    Bracket,
    EndEnv(&'a str),
    Math(char),
}

fn is_matrix(env: &str) -> bool {
    matches!(env, "array" | "pmatrix" | "bmatrix" | "smallmatrix" | "psmallmatrix" | "bsmallmatrix")
}

fn is_display(env: &str) -> bool {
    let base = env.trim_end_matches('*');
    matches!(base, "equation" | "eqnarray" | "align" | "multline" | "gather" | "dmath")
}

struct Parser {
    c: Vec<char>,
    i: usize,
    /// Nesting of `nodes` calls now.
    depth: usize,
    /// Steps left; the parse gives up (the reference's output is then not computed) at 0.
    fuel: usize,
    /// Set when the depth or the fuel ran out: every call returns at once and the result is an error.
    gave_up: bool,
}

impl Parser {
    fn new(s: &str) -> Self {
        let c: Vec<char> = s.chars().collect();
        let fuel = STEPS_PER_CHAR * c.len() + 1_000;
        Parser { c, i: 0, depth: 0, fuel, gave_up: false }
    }

    /// Pays for one step; false (and the parse gives up) when the fuel is spent.
    fn tick(&mut self) -> bool {
        if self.fuel == 0 {
            self.gave_up = true;
        }
        self.fuel = self.fuel.saturating_sub(1);
        !self.gave_up
    }

    fn skip_ws(&mut self) {
        while self.c.get(self.i).is_some_and(|c| c.is_whitespace()) && self.tick() {
            self.i += 1;
        }
    }

    /// Nodes up to `stop` (consumed); tolerant like pylatexenc: an unclosed group runs to the end.
    fn nodes(&mut self, stop: Stop<'_>) -> (Vec<Node>, bool) {
        if self.depth >= MAX_DEPTH {
            self.gave_up = true;
        }
        self.depth += 1;
        let parsed = self.nodes_inner(stop);
        self.depth -= 1;
        parsed
    }

    fn nodes_inner(&mut self, stop: Stop<'_>) -> (Vec<Node>, bool) {
        let mut out = Vec::new();
        while let Some(&ch) = self.c.get(self.i) {
            if !self.tick() {
                return (out, true);
            }
            self.i += 1;
            match ch {
                '}' if stop == Stop::Brace => return (out, true),
                '}' => {}
                ']' if stop == Stop::Bracket => return (out, true),
                '{' => out.push(Node::Group(self.nodes(Stop::Brace).0)),
                '\\' => {
                    let name = self.macro_name();
                    match (name.as_str(), stop) {
                        ("end", _) => {
                            let env = self.env_name();
                            if stop == Stop::EndEnv(&env) {
                                return (out, true);
                            }
                        }
                        (")", Stop::Math(')')) | ("]", Stop::Math(']')) => return (out, true),
                        (")" | "]", _) => {}
                        ("(" | "[", _) => {
                            let display = name == "[";
                            let (body, _) = self.nodes(Stop::Math(if display { ']' } else { ')' }));
                            out.push(Node::Math { display, body });
                        }
                        ("begin", _) => {
                            let env = self.env_name();
                            if env == "array" {
                                self.args("[{");
                            }
                            let (body, closed) = self.nodes(Stop::EndEnv(&env));
                            out.push(Node::Env { name: env, body, closed });
                        }
                        _ => out.push(self.macro_node(name)),
                    }
                }
                _ => out.push(self.special(ch).unwrap_or(Node::Char(ch))),
            }
        }
        (out, stop == Stop::End)
    }

    fn special(&mut self, ch: char) -> Option<Node> {
        let next = |k: usize| self.c.get(self.i + k).copied();
        let (text, extra) = match (ch, next(0), next(1)) {
            ('-', Some('-'), Some('-')) => ("—", 2),
            ('-', Some('-'), _) => ("–", 1),
            ('`', Some('`'), _) => ("“", 1),
            ('\'', Some('\''), _) => ("”", 1),
            ('!', Some('`'), _) => ("¡", 1),
            ('?', Some('`'), _) => ("¿", 1),
            ('&', _, _) => ("&", 0),
            ('~', _, _) => ("\u{a0}", 0),
            _ => return None,
        };
        self.i += extra;
        Some(Node::Special(text))
    }

    /// A macro name after `\`: letters (then spaces are eaten, as TeX does) or one other character.
    fn macro_name(&mut self) -> String {
        let start = self.i;
        while self.c.get(self.i).is_some_and(|c| c.is_ascii_alphabetic()) && self.tick() {
            self.i += 1;
        }
        if self.i > start {
            let name: String = self.c[start..self.i].iter().collect();
            self.skip_ws();
            return name;
        }
        self.c
            .get(self.i)
            .map(|&c| {
                self.i += 1;
                c.to_string()
            })
            .unwrap_or_default()
    }

    /// The `{name}` after `\begin` or `\end`.
    fn env_name(&mut self) -> String {
        self.skip_ws();
        if self.c.get(self.i) != Some(&'{') {
            return String::new();
        }
        self.i += 1;
        let start = self.i;
        while self.c.get(self.i).is_some_and(|&c| c != '}') && self.tick() {
            self.i += 1;
        }
        let name = self.c[start..self.i].iter().collect();
        self.i = (self.i + 1).min(self.c.len());
        name
    }

    fn macro_node(&mut self, name: String) -> Node {
        let spec = arg_spec(&name);
        let args = self.args(spec);
        Node::Macro { name, args }
    }

    /// Arguments per `spec`; `None` (and nothing consumed) when a mandatory one is missing.
    fn args(&mut self, spec: &str) -> Option<Vec<Option<Node>>> {
        let start = self.i;
        let mut args = Vec::new();
        for kind in spec.chars() {
            self.skip_ws();
            let arg = match (kind, self.c.get(self.i).copied()) {
                ('*', Some('*')) => Some(Node::Char('*')),
                ('[', Some('[')) => {
                    self.i += 1;
                    Some(Node::Group(self.nodes(Stop::Bracket).0))
                }
                ('*' | '[', _) => {
                    args.push(None);
                    continue;
                }
                (_, None | Some('}')) => {
                    self.i = start;
                    return None;
                }
                (_, Some('{')) => {
                    self.i += 1;
                    Some(Node::Group(self.nodes(Stop::Brace).0))
                }
                (_, Some('\\')) => {
                    // A macro used as an argument gets no arguments of its own (`\frac1\frac12`
                    // renders `1/%s/%s12` there).
                    self.i += 1;
                    Some(Node::Macro { name: self.macro_name(), args: None })
                }
                (_, Some(c)) => Some(Node::Char(c)),
            };
            if matches!(arg, Some(Node::Char(_))) {
                self.i += 1;
            }
            args.push(arg);
        }
        Some(args)
    }
}

fn render_all(nodes: &[Node]) -> Result<String, LatexError> {
    nodes.iter().map(render).collect()
}

/// `[ a b; c d ]`: rows split at `\\`, cells at `&`.
fn render_matrix(body: &[Node]) -> Result<String, LatexError> {
    let mut rows: Vec<Vec<String>> = vec![vec![String::new()]];
    for node in body {
        match node {
            Node::Macro { name, .. } if name == "\\" => rows.push(vec![String::new()]),
            Node::Special("&") => rows.last_mut().map(|r| r.push(String::new())).unwrap_or_default(),
            n => {
                let text = render(n)?;
                if let Some(cell) = rows.last_mut().and_then(|r| r.last_mut()) {
                    cell.push_str(&text);
                }
            }
        }
    }
    let rows: Vec<String> =
        rows.iter().map(|r| r.iter().map(|c| c.trim()).collect::<Vec<_>>().join(" ")).collect();
    Ok(format!("[ {} ]", rows.join("; ")))
}

pub(super) fn render(node: &Node) -> Result<String, LatexError> {
    match node {
        Node::Char(c) => Ok(c.to_string()),
        Node::Group(nodes) => render_all(nodes),
        Node::Special("&") => Ok("   ".to_string()),
        Node::Special(s) => Ok(s.to_string()),
        Node::Macro { name, args } => render_macro(name, args),
        Node::Math { display: false, body } => render_all(body),
        Node::Math { display: true, body } => Ok(format!("\n    {}\n", render_all(body)?)),
        Node::Env { name, body, closed } if is_matrix(name) => {
            if !closed && body.is_empty() {
                return Err(LatexError);
            }
            render_matrix(body)
        }
        Node::Env { name, body, .. } if is_display(name) => Ok(format!("\n    {}\n", render_all(body)?)),
        Node::Env { body, .. } => render_all(body),
    }
}

/// Renders LaTeX as plain text; `Err` where the reference renderer raises.
pub(crate) fn latex_to_text(s: &str) -> Result<String, LatexError> {
    // Groups nest by recursion: refuse absurd nesting instead of exhausting the stack.
    let (mut depth, mut max) = (0usize, 0usize);
    for c in s.chars() {
        match c {
            '{' | '[' => depth += 1,
            '}' | ']' => depth = depth.saturating_sub(1),
            _ => {}
        }
        max = max.max(depth);
    }
    if max > MAX_DEPTH {
        return Err(LatexError);
    }
    let mut p = Parser::new(s);
    let (nodes, _) = p.nodes(Stop::End);
    if p.gave_up {
        return Err(LatexError);
    }
    render_all(&nodes)
}

#[cfg(test)]
mod tests {
    use super::latex_to_text as t;

    #[test]
    fn renders_like_pylatexenc() {
        let cases = [
            ("\\frac{1}{2}", "1/2"),
            ("\\frac{a+b}{c}", "a+b/c"),
            ("\\frac12", "1/2"),
            ("\\frac 1 2", "1/2"),
            ("\\frac\\pi2", "π/2"),
            ("\\sqrt[3]{2}", "√(2)"),
            ("\\sqrt2", "√(2)"),
            ("2\\sqrt{3}", "2√(3)"),
            ("\\pi x", "πx"),
            ("1 \\frac{1}{2}", "1 1/2"),
            ("\\left(1,2\\right)", "(1,2)"),
            ("\\{1,2\\}", "{1,2}"),
            ("\\text{(A)}", "(A)"),
            ("5\\text{ cm}", "5 cm"),
            ("\\mbox{hi}", ""),
            ("\\foo{3}", "3"),
            ("\\ne 3", "3"),
            ("\\neq3", "≠3"),
            ("\\binom{5}{2}", "52"),
            ("10\\,000", "10 000"),
            ("a--b", "a–b"),
            ("\\frac{1}", "%s/%s1"),
            ("\\frac{1}{", "1/"),
            ("\\frac1\\frac12", "1/%s/%s12"),
            ("\\sqrt\\text{0.5", "√()0.5"),
            ("\\sqrt{}", "√()"),
            ("\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}", "[ 1 2; 3 4 ]"),
            ("\\begin{array}{c} 1 \\\\ 2\\end{array}", "[ 1; 2 ]"),
            ("\\begin{matrix}1\\end{matrix}", "1"),
            ("\\(x\\)", "x"),
            ("\\not=", "≠"),
            ("a}b", "ab"),
            ("\\color{red}x", "x"),
            ("\\overline{AB}", "AB"),
            ("\\hat{x}", "x\u{302}"),
            ("\\operatorname{lcm}", "lcm"),
        ];
        for (input, want) in cases {
            assert_eq!(t(input).as_deref(), Ok(want), "{input}");
        }
        assert!(t("\\sqrt").is_err());
        assert!(t("\\begin{pmatrix}").is_err());
    }

    /// Runs `f` on a thread with a small stack (a 2 MiB thread overflowed on deep inputs before the
    /// parser bounded its own depth) and returns how long it took.
    fn timed_on_small_stack(f: impl FnOnce() + Send + 'static) -> f64 {
        let start = std::time::Instant::now();
        std::thread::Builder::new().stack_size(1 << 21).spawn(f).unwrap().join().unwrap();
        start.elapsed().as_secs_f64()
    }

    #[test]
    fn regression_missing_arguments_nested_are_not_exponential() {
        // Each `\frac{` without its second argument re-read everything after it, twice per level:
        // 2^30 steps for 30 levels (within the brace-depth limit), a hang.
        let secs = timed_on_small_stack(|| {
            for input in ["\\frac{".repeat(30), "\\sqrt[".repeat(30), "\\textcolor[".repeat(25)] {
                assert!(t(&input).is_err(), "{input}");
            }
            assert!(t(&("\\frac{".repeat(3) + "}")).is_ok(), "a few levels still render");
        });
        assert!(secs < 5.0, "took {secs} s");
    }

    #[test]
    fn regression_deep_environments_and_math_do_not_overflow_the_stack() {
        // `\(` and `\begin{..}` nest by recursion but have no brace left open: 100,000 of them
        // overflowed the stack (an abort, not a panic).
        let secs = timed_on_small_stack(|| {
            for input in [
                "\\(".repeat(100_000),
                "\\[".repeat(100_000),
                "\\begin{a}".repeat(100_000),
                "\\begin{array}".repeat(100_000),
                "\\frac\\(".repeat(50_000),
            ] {
                assert!(t(&input).is_err(), "{}", &input[..20]);
            }
            assert_eq!(t(&"\\(x\\)".repeat(10_000)).map(|s| s.len()), Ok(10_000));
        });
        assert!(secs < 5.0, "took {secs} s");
    }
}
