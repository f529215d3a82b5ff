//! Where a stack is (`--all-regions`): the regions enabled for the account, and in each, in one
//! wave, whether the stack has anything there: one listing of the region's resources tagged
//! with the stack's name, and the role named for the region (IAM is global; a run killed after
//! making only the role left just that).

use std::collections::HashMap;

use anyhow::{Result, bail};
use aws_sdk_account::types::RegionOptStatus;
use aws_sdk_resourcegroupstagging::types::TagFilter;

use crate::aws::{Aws, AwsResultExt, IAM_NOT_FOUND, MAX_PAGES};
use crate::partition::Partition;
use crate::stack::{STACK_TAG, Stack};

/// The aws partition's default regions: launched before March 20, 2019, enabled for every
/// account, and no account can disable them (Account Management reference, "Enable or disable
/// AWS Regions in your account"). They are asked while ListRegions answers.
const ALWAYS_ENABLED: [&str; 17] = [
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
    "ap-south-1",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "ap-southeast-1",
    "ap-southeast-2",
    "ca-central-1",
    "eu-central-1",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "eu-north-1",
    "sa-east-1",
];

/// What `ask` finds in each region enabled for the account (`None`: nothing there), for the
/// regions where it finds something, in the order AWS lists them. The partition's default
/// regions are asked while the account's regions are listed, so an account without opt-in
/// regions waits for no list first; an opt-in region, once the list says it is enabled.
/// `home`: where the account's regions are listed from.
pub async fn find_stack<T>(
    home: &Aws,
    ask: impl AsyncFn(String) -> Result<Option<T>>,
) -> Result<Vec<(String, T)>> {
    let defaults: &[&str] = match Partition::of_region(&home.region) {
        Ok(Partition::Aws) => &ALWAYS_ENABLED,
        _ => &[],
    };
    let ask_in = async |region: String| anyhow::Ok((region.clone(), ask(region).await?));
    let early = futures::future::try_join_all(defaults.iter().map(|region| ask_in(region.to_string())));
    let (enabled, early) = home.checked(async { tokio::try_join!(enabled_regions(home), early) }).await?;
    let opted_in = enabled.iter().filter(|region| !defaults.contains(&region.as_str()));
    let late = futures::future::try_join_all(opted_in.map(|region| ask_in(region.clone()))).await?;
    let mut found: HashMap<String, T> =
        early.into_iter().chain(late).filter_map(|(region, found)| Some((region, found?))).collect();
    let mut listed: Vec<(String, T)> =
        enabled.into_iter().filter_map(|region| found.remove(&region).map(|found| (region, found))).collect();
    // A default region the list left out (an emulator's short list) is still where it was found.
    listed.extend(found);
    Ok(listed)
}

/// The regions enabled for the account (by default, or opted in), in the order AWS lists them
/// (Account API reference, ListRegions).
async fn enabled_regions(aws: &Aws) -> Result<Vec<String>> {
    let mut regions = Vec::new();
    let mut next = None;
    for _ in 0..MAX_PAGES {
        let page = aws
            .account
            .list_regions()
            .region_opt_status_contains(RegionOptStatus::Enabled)
            .region_opt_status_contains(RegionOptStatus::EnabledByDefault)
            .max_results(50)
            .set_next_token(next.clone())
            .send()
            .await
            .aws_context("listing the account's regions (account:ListRegions, which --all-regions needs; or name the regions with --region a,b)")?;
        regions.extend(page.regions().iter().filter_map(|region| region.region_name().map(str::to_string)));
        next = match page.next_token() {
            Some(token) if Some(token) != next.as_deref() => Some(token.to_string()),
            _ => return Ok(regions),
        };
    }
    bail!("listing the account's regions: still more after {MAX_PAGES} pages")
}

/// Whether the stack has anything in `aws`'s region: a resource tagged with its name
/// (Resource Groups Tagging API GetResources: a page of one is enough), or its role for the
/// region, tagged as the stack's.
pub async fn holds_stack(aws: &Aws, stack: &Stack) -> Result<bool> {
    // A page may come empty with more to follow: read on until one holds a resource.
    let tagged = async {
        let doing = || format!("listing what is tagged as stack {} in {}", stack.name, stack.region);
        let mut next: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let filter = TagFilter::builder().key(STACK_TAG).values(&stack.name).build();
            let ask = aws.tagging.get_resources().tag_filters(filter).resources_per_page(1);
            let page = ask.set_pagination_token(next.clone()).send().await.aws_context(doing())?;
            if !page.resource_tag_mapping_list().is_empty() {
                return anyhow::Ok(true);
            }
            next = match page.pagination_token() {
                Some(token) if !token.is_empty() && Some(token) != next.as_deref() => Some(token.to_string()),
                _ => return Ok(false),
            };
        }
        bail!("{}: still more after {MAX_PAGES} pages", doing())
    };
    let role = async {
        let found = aws.iam.get_role().role_name(stack.role_name()).send().await;
        let found = found.or_absent(IAM_NOT_FOUND, format!("reading role {}", stack.role_name()))?;
        let tags = found.and_then(|found| found.role).map(|role| role.tags.unwrap_or_default());
        anyhow::Ok(
            tags.is_some_and(|tags| tags.iter().any(|tag| tag.key == STACK_TAG && tag.value == stack.name)),
        )
    };
    let (tagged, role) = tokio::try_join!(tagged, role)?;
    Ok(tagged || role)
}
