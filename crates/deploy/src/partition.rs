//! AWS partitions: a region belongs to one, and every ARN and public host name `up` builds
//! carries it (IAM user guide, "IAM identifiers": partitions `aws`, `aws-cn`, `aws-us-gov`;
//! China's endpoints end in `amazonaws.com.cn`). A leaf: it depends on no other module.

use std::fmt;

/// The partitions tokendeploy deploys to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Partition {
    /// The commercial regions.
    Aws,
    /// China (Beijing, Ningxia).
    AwsCn,
    /// AWS GovCloud (US).
    AwsUsGov,
}

/// The isolated partitions, by the region prefix that names them: not supported (no public
/// endpoint to test against, other DNS suffixes).
const UNSUPPORTED: [(&str, &str); 5] = [
    ("us-isob-", "aws-iso-b"),
    ("us-isof-", "aws-iso-f"),
    ("us-iso-", "aws-iso"),
    ("eu-isoe-", "aws-iso-e"),
    ("eusc-", "aws-eusc"),
];

impl Partition {
    /// The partition of `region`; a region of a partition tokendeploy does not deploy to is an
    /// error naming it.
    pub fn of_region(region: &str) -> Result<Self, String> {
        if let Some((_, name)) = UNSUPPORTED.iter().find(|(prefix, _)| region.starts_with(prefix)) {
            return Err(format!(
                "region {region} is in the {name} partition, which tokendeploy does not deploy to (it deploys to aws, aws-cn and aws-us-gov)"
            ));
        }
        Ok(match region {
            _ if region.starts_with("cn-") => Partition::AwsCn,
            _ if region.starts_with("us-gov-") => Partition::AwsUsGov,
            _ => Partition::Aws,
        })
    }

    /// As ARNs spell it.
    pub fn name(self) -> &'static str {
        match self {
            Partition::Aws => "aws",
            Partition::AwsCn => "aws-cn",
            Partition::AwsUsGov => "aws-us-gov",
        }
    }

    /// The suffix of its public host names, such as `execute-api.REGION.SUFFIX`.
    pub fn dns_suffix(self) -> &'static str {
        match self {
            Partition::AwsCn => "amazonaws.com.cn",
            Partition::Aws | Partition::AwsUsGov => "amazonaws.com",
        }
    }
}

impl fmt::Display for Partition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_region_maps_to_its_partition() {
        assert_eq!(Partition::of_region("us-west-1"), Ok(Partition::Aws));
        assert_eq!(Partition::of_region("eu-central-2"), Ok(Partition::Aws));
        assert_eq!(Partition::of_region("cn-north-1"), Ok(Partition::AwsCn));
        assert_eq!(Partition::of_region("cn-northwest-1"), Ok(Partition::AwsCn));
        assert_eq!(Partition::of_region("us-gov-west-1"), Ok(Partition::AwsUsGov));
        assert_eq!(Partition::AwsCn.dns_suffix(), "amazonaws.com.cn");
        assert_eq!(Partition::AwsUsGov.dns_suffix(), "amazonaws.com");
    }

    #[test]
    fn an_isolated_partition_is_refused_by_name() {
        for (region, name) in
            [("us-iso-east-1", "aws-iso"), ("us-isob-east-1", "aws-iso-b"), ("eu-isoe-west-1", "aws-iso-e")]
        {
            let error = Partition::of_region(region).unwrap_err();
            assert!(error.contains(&format!("the {name} partition")), "{error}");
        }
    }
}
