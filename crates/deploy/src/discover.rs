//! Where a stack is (`--all-regions`): the regions enabled for the account, and in each, in one
//! wave, whether the stack has anything there: one listing of the region's resources tagged
//! with the stack's name, and the role named for the region (IAM is global; a run killed after
//! making only the role left just that).

use anyhow::{Result, bail};
use aws_sdk_account::types::RegionOptStatus;
use aws_sdk_resourcegroupstagging::types::TagFilter;

use crate::aws::{Aws, AwsResultExt, IAM_NOT_FOUND, MAX_PAGES};
use crate::stack::{STACK_TAG, Stack};

/// The regions enabled for the account (by default, or opted in), in the order AWS lists them
/// (Account API reference, ListRegions).
pub async fn enabled_regions(aws: &Aws) -> Result<Vec<String>> {
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
            .aws_context("listing the account's regions")?;
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
