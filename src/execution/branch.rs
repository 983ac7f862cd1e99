//! The branch an execution's work is committed to, named from a template:
//! `agent/{execution_id}` unless the request names it otherwise, say
//! `agent/{agent_id}-{task_id}` for a caller that runs agents per task.
//!
//! The template's grammar is narrow on purpose: path components of letters,
//! digits, `_` and `-` and the variables below, joined by `/`. Every name it
//! can produce is a branch name git accepts (`git check-ref-format`: no `..`,
//! no component starting with `.` or ending in `.lock`, no `@{`, no control
//! characters or `~^:?*[\`, nothing ending in `/` or `.`) and no tool reads
//! as an option (no leading `-`).

/// The template used when a request names none.
pub const DEFAULT_BRANCH_TEMPLATE: &str = "agent/{execution_id}";

/// The longest template accepted, in bytes.
pub const MAX_TEMPLATE_BYTES: usize = 200;

/// The longest branch name, in bytes (git's refs must fit a file name).
pub const MAX_BRANCH_BYTES: usize = 255;

/// The longest caller-given `agent_id` or `task_id`, in bytes.
pub const MAX_LABEL_BYTES: usize = 64;

/// A variable a template may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Variable {
    ExecutionId,
    ShortId,
    Tenant,
    AgentId,
    TaskId,
}

/// Each variable by name, with the longest value it can take (a tenant name
/// is at most 63 bytes), for bounding a name before the tenant is known.
const VARIABLES: [(&str, Variable, usize); 5] = [
    ("execution_id", Variable::ExecutionId, 36),
    ("short_id", Variable::ShortId, 8),
    ("tenant", Variable::Tenant, 63),
    ("agent_id", Variable::AgentId, MAX_LABEL_BYTES),
    ("task_id", Variable::TaskId, MAX_LABEL_BYTES),
];

/// What a branch is named from.
#[derive(Debug, Clone, Copy)]
pub struct Naming<'a> {
    /// The execution's id (a UUID).
    pub execution_id: &'a str,
    /// Its tenant.
    pub tenant: &'a str,
    /// The caller's agent id, if given.
    pub agent_id: Option<&'a str>,
    /// The caller's task id, if given.
    pub task_id: Option<&'a str>,
}

/// Why a template or a label cannot name a branch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BranchError {
    /// Not in the template's grammar.
    #[error(
        "must be path components of letters, digits, `_` and `-` and the variables \
         {{execution_id}}, {{short_id}}, {{tenant}}, {{agent_id}}, {{task_id}}, joined by `/`, \
         not starting with `-`, at most 200 bytes"
    )]
    Grammar,
    /// A variable whose value the request did not give.
    #[error("uses {{{0}}}, which the request does not give")]
    Missing(&'static str),
    /// The name it makes would be too long.
    #[error("would make a branch name longer than 255 bytes")]
    TooLong,
}

/// True for a caller-given `agent_id` or `task_id`: 1 to 64 letters, digits,
/// `_` and `-`, not starting with `-`.
pub fn is_label(label: &str) -> bool {
    !label.is_empty()
        && label.len() <= MAX_LABEL_BYTES
        && !label.starts_with('-')
        && label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Checks `template` against the grammar and against what the request gives
/// (`agent_id`, `task_id`), and bounds the names it can make for any tenant.
pub fn check_template(
    template: &str,
    agent_id: Option<&str>,
    task_id: Option<&str>,
) -> Result<(), BranchError> {
    bound(&parse(template)?, agent_id, task_id)
}

/// The branch `template` names for `naming`.
pub fn render(template: &str, naming: &Naming<'_>) -> Result<String, BranchError> {
    let parts = parse(template)?;
    bound(&parts, naming.agent_id, naming.task_id)?;
    let mut name = String::with_capacity(template.len() + 64);
    for part in parts {
        name.push_str(match part {
            Part::Text(text) => text,
            Part::Variable(Variable::ExecutionId) => naming.execution_id,
            Part::Variable(Variable::ShortId) => short_id(naming.execution_id),
            Part::Variable(Variable::Tenant) => naming.tenant,
            // `bound` found both given.
            Part::Variable(Variable::AgentId) => naming.agent_id.unwrap_or_default(),
            Part::Variable(Variable::TaskId) => naming.task_id.unwrap_or_default(),
        });
    }
    if !is_branch_name(&name) {
        return Err(BranchError::Grammar);
    }
    Ok(name)
}

/// The last 8 characters of an execution id: its random part (a UUID v7
/// starts with the time, which executions created together share).
pub fn short_id(execution_id: &str) -> &str {
    let start = execution_id.len().saturating_sub(8);
    execution_id.get(start..).unwrap_or(execution_id)
}

/// True for a name git accepts as a branch (`refs/heads/<name>`, by the rules
/// of `git check-ref-format`) that no tool reads as an option: a ref name
/// ([`super::names::is_ref_name`]) that also has no empty component, none
/// starting with `.` or ending in `.lock`, no `@{`, is not `@`, and does not
/// end in `/` or `.`.
pub fn is_branch_name(name: &str) -> bool {
    super::names::is_ref_name(name)
        && !name.ends_with('.')
        && name != "@"
        && !name.contains("@{")
        && name.split('/').all(|component| {
            !component.is_empty() && !component.starts_with('.') && !component.ends_with(".lock")
        })
}

enum Part<'t> {
    Text(&'t str),
    Variable(Variable),
}

/// Refuses a variable the request does not give, and a template that could
/// make a name over [`MAX_BRANCH_BYTES`] for any tenant.
fn bound(
    parts: &[Part<'_>],
    agent_id: Option<&str>,
    task_id: Option<&str>,
) -> Result<(), BranchError> {
    let mut longest = 0;
    for part in parts {
        longest += match part {
            Part::Text(text) => text.len(),
            Part::Variable(Variable::AgentId) => {
                agent_id.ok_or(BranchError::Missing("agent_id"))?.len()
            }
            Part::Variable(Variable::TaskId) => {
                task_id.ok_or(BranchError::Missing("task_id"))?.len()
            }
            Part::Variable(variable) => VARIABLES
                .iter()
                .find(|(_, known, _)| known == variable)
                .map_or(0, |(_, _, bytes)| *bytes),
        };
    }
    if longest > MAX_BRANCH_BYTES {
        return Err(BranchError::TooLong);
    }
    Ok(())
}

/// The template's literal text and variables, in order.
fn parse(template: &str) -> Result<Vec<Part<'_>>, BranchError> {
    if template.is_empty() || template.len() > MAX_TEMPLATE_BYTES || template.starts_with('-') {
        return Err(BranchError::Grammar);
    }
    let mut parts = Vec::new();
    let mut rest = template;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('{') {
            let end = after.find('}').ok_or(BranchError::Grammar)?;
            let (_, variable, _) = VARIABLES
                .iter()
                .find(|(name, _, _)| *name == &after[..end])
                .ok_or(BranchError::Grammar)?;
            parts.push(Part::Variable(*variable));
            rest = &after[end + 1..];
        } else {
            let end = rest.find('{').unwrap_or(rest.len());
            let text = &rest[..end];
            if !text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'/')
            {
                return Err(BranchError::Grammar);
            }
            parts.push(Part::Text(text));
            rest = &rest[end..];
        }
    }
    // Components joined by single slashes, none empty.
    let mut previous_slash = true;
    for part in &parts {
        match part {
            Part::Variable(_) => previous_slash = false,
            Part::Text(text) => {
                for b in text.bytes() {
                    if b == b'/' && previous_slash {
                        return Err(BranchError::Grammar);
                    }
                    previous_slash = b == b'/';
                }
            }
        }
    }
    if previous_slash {
        return Err(BranchError::Grammar);
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "01932c4e-7a1b-7c3d-9e8f-0123456789ab";

    fn naming<'a>(agent: Option<&'a str>, task: Option<&'a str>) -> Naming<'a> {
        Naming {
            execution_id: ID,
            tenant: "team-a",
            agent_id: agent,
            task_id: task,
        }
    }

    #[test]
    fn templates_name_branches() {
        let all = naming(Some("coder-7"), Some("JIRA-42"));
        for (template, name) in [
            (DEFAULT_BRANCH_TEMPLATE, format!("agent/{ID}")),
            ("agent/{agent_id}-{task_id}", "agent/coder-7-JIRA-42".into()),
            ("{tenant}/{short_id}", "team-a/456789ab".into()),
            ("work_{task_id}", "work_JIRA-42".into()),
        ] {
            assert_eq!(render(template, &all).unwrap(), name, "{template}");
            assert!(is_branch_name(&name));
        }
    }

    #[test]
    fn templates_outside_the_grammar_are_refused() {
        let all = naming(Some("a"), Some("b"));
        for template in [
            "",
            "-x",
            "/x",
            "x/",
            "a//b",
            "a..b",
            "a/.b",
            "x.lock",
            "a b",
            "a@{1}",
            "a~1",
            "{unknown}",
            "{execution_id",
            "a}b",
            "a:b",
            "a\\b",
            "a\nb",
            "{agent_id}/",
            &"x".repeat(MAX_TEMPLATE_BYTES + 1),
        ] {
            assert_eq!(
                render(template, &all),
                Err(BranchError::Grammar),
                "{template:?}"
            );
        }
    }

    #[test]
    fn a_variable_the_request_does_not_give_is_refused() {
        assert_eq!(
            check_template("agent/{agent_id}-{task_id}", None, Some("t")),
            Err(BranchError::Missing("agent_id"))
        );
        assert_eq!(
            check_template("agent/{task_id}", Some("a"), None),
            Err(BranchError::Missing("task_id"))
        );
    }

    #[test]
    fn names_longer_than_git_allows_are_refused_before_the_tenant_is_known() {
        let template = "{tenant}".repeat(5);
        assert_eq!(
            check_template(&template, None, None),
            Err(BranchError::TooLong)
        );
        let label = "a".repeat(MAX_LABEL_BYTES);
        assert!(check_template("{agent_id}/{task_id}", Some(&label), Some(&label)).is_ok());
    }

    #[test]
    fn labels_are_safe_in_any_component() {
        for good in ["a", "coder-7", "JIRA_42", &"x".repeat(64)] {
            assert!(is_label(good), "{good}");
        }
        for bad in ["", "-a", "a.b", "a/b", "a b", "a..b", &"x".repeat(65), "ü"] {
            assert!(!is_label(bad), "{bad}");
        }
    }

    #[test]
    fn check_ref_format_rules() {
        for bad in [
            "a/", "a.", "@", "a..b", "a/.b", "a.lock", "a/b.lock", "a@{b", "a b", "a*b", "-a",
        ] {
            assert!(!is_branch_name(bad), "{bad}");
        }
        for good in ["a", "a/b", "a.b", "v1.2", "a@b", "a-b_c"] {
            assert!(is_branch_name(good), "{good}");
        }
    }
}
