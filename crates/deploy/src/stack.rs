//! A stack: the name a user gives, and every resource name and tag derived from it.

use std::collections::{BTreeMap, HashMap};

use anyhow::{Result, anyhow, bail};

use crate::partition::Partition;

/// The tag that marks a resource as made by tokendeploy for one stack.
pub const STACK_TAG: &str = "tokendeploy:stack";
/// The tool version that last wrote the resource.
pub const VERSION_TAG: &str = "tokendeploy:version";
pub const DEFAULT_STACK_NAME: &str = "token-server";
/// The API Gateway stage `up` deploys.
pub const STAGE: &str = "prod";
const MAX_NAME_LEN: usize = 40;
/// IAM role names are at most 64 characters.
const MAX_ROLE_NAME_LEN: usize = 64;

/// The role's one inline policy, when the secret is in Secrets Manager: reading that secret.
pub const SECRET_POLICY_NAME: &str = "tokendeploy-read-secret";

/// Marks the role and the REST API with the `up` run that made them, so a run can tell a copy
/// of its own (a lost answer, retried) from one a twin run made at the same moment.
pub const RUN_TAG: &str = "tokendeploy:run";

/// This process's run id: random enough that two runs never share one.
pub fn run_id() -> &'static str {
    static ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ID.get_or_init(|| {
        use std::hash::{BuildHasher, Hasher};
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u32(std::process::id());
        hasher.write_u128(
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos(),
        );
        format!("{:016x}", hasher.finish())
    })
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stack {
    pub name: String,
    pub region: String,
    /// The region's: every ARN and host name of the stack is in it.
    pub partition: Partition,
}

impl Stack {
    /// Checks the name against the rules every derived name must meet.
    pub fn new(name: &str, region: &str) -> Result<Self> {
        let valid_chars = name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if name.is_empty()
            || name.len() > MAX_NAME_LEN
            || !valid_chars
            || !name.starts_with(|c: char| c.is_ascii_lowercase())
            || name.ends_with('-')
        {
            bail!(
                "stack name {name:?} is not valid: use 1 to {MAX_NAME_LEN} lowercase letters, digits and hyphens, starting with a letter and not ending with a hyphen"
            );
        }
        let region_ok = region.len() <= 20
            && region.split('-').count() >= 3
            && region.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && region.rsplit('-').next().is_some_and(|n| n.parse::<u8>().is_ok());
        if !region_ok {
            bail!("region {region:?} is not an AWS region name such as us-west-1");
        }
        let partition = Partition::of_region(region).map_err(|why| anyhow!(why))?;
        let stack = Self { name: name.to_string(), region: region.to_string(), partition };
        if stack.role_name().len() > MAX_ROLE_NAME_LEN {
            bail!(
                "stack name {name:?} is too long for region {region}: the role name {} would pass IAM's {MAX_ROLE_NAME_LEN} characters; choose a shorter --name",
                stack.role_name()
            );
        }
        Ok(stack)
    }

    /// `arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE` in the stack's partition (`region` and
    /// `account` empty where the service leaves them so: IAM has no region).
    pub fn arn(&self, service: &str, region: &str, account: &str, resource: &str) -> String {
        format!("arn:{}:{service}:{region}:{account}:{resource}", self.partition)
    }

    /// IAM is global, so the role carries the region: one stack name deployed in two regions
    /// gets two roles, and `down` in one region leaves the other's alone.
    pub fn role_name(&self) -> String {
        format!("{}-{}-lambda", self.name, self.region)
    }

    pub fn function_name(&self) -> &str {
        &self.name
    }

    pub fn api_name(&self) -> &str {
        &self.name
    }

    /// The Secrets Manager secret holding the provider's secrets (`--secret-store
    /// secrets-manager`). Regional, like the function: the name need not carry the region.
    pub fn secret_name(&self) -> String {
        format!("tokendeploy/{}", self.name)
    }

    /// The API key and the usage plan that issues it (`--api-key`).
    pub fn api_key_name(&self) -> &str {
        &self.name
    }

    /// Lambda creates it on the function's first invocation.
    pub fn log_group_name(&self) -> String {
        format!("/aws/lambda/{}", self.function_name())
    }

    /// The tags every resource of this stack carries.
    pub fn tags(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            (STACK_TAG.to_string(), self.name.clone()),
            (VERSION_TAG.to_string(), env!("CARGO_PKG_VERSION").to_string()),
        ])
    }

    pub fn owns(&self, tags: &HashMap<String, String>) -> bool {
        tags.get(STACK_TAG) == Some(&self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derives_names_with_the_region_in_the_role() {
        let stack = Stack::new("token-server", "us-west-1").unwrap();
        assert_eq!(stack.role_name(), "token-server-us-west-1-lambda");
        assert_eq!(stack.function_name(), "token-server");
        assert_eq!(stack.log_group_name(), "/aws/lambda/token-server");
        let other_region = Stack::new("token-server", "eu-west-1").unwrap();
        assert_ne!(stack.role_name(), other_region.role_name());
    }

    #[test]
    fn refuses_names_that_cannot_fit_aws_rules() {
        for bad in ["", "Token", "1abc", "a_b", "abc-", "a b", &"a".repeat(41)] {
            let err = Stack::new(bad, "us-west-1").unwrap_err().to_string();
            assert!(err.contains("not valid"), "{bad}: {err}");
        }
        let long = "a".repeat(40);
        assert!(Stack::new(&long, "ap-southeast-1").is_ok(), "40 + longest common region fits");
        assert!(Stack::new("ok", "mars").unwrap_err().to_string().contains("region"));
        let iso = Stack::new("ok", "us-iso-east-1").unwrap_err().to_string();
        assert!(iso.contains("aws-iso partition"), "{iso}");
    }

    #[test]
    fn arns_carry_the_regions_partition() {
        let china = Stack::new("s", "cn-north-1").unwrap();
        assert_eq!(
            china.arn("lambda", "cn-north-1", "1", "function:s"),
            "arn:aws-cn:lambda:cn-north-1:1:function:s"
        );
        let gov = Stack::new("s", "us-gov-west-1").unwrap();
        assert_eq!(gov.arn("iam", "", "1", "role/r"), "arn:aws-us-gov:iam::1:role/r");
    }

    #[test]
    fn owns_only_resources_tagged_with_its_name() {
        let stack = Stack::new("a", "us-west-1").unwrap();
        let tags = |v: &str| HashMap::from([(STACK_TAG.to_string(), v.to_string())]);
        assert!(stack.owns(&tags("a")));
        assert!(!stack.owns(&tags("b")));
        assert!(!stack.owns(&HashMap::new()));
    }
}
