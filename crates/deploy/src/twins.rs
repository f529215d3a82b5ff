//! Twin runs: `up` runs of one stack at the same moment. API Gateway lets REST APIs, API keys
//! and usage plans share a name, so each twin may make its own; every run then applies the
//! same rule to the same listing, so all keep the same one, and each removes the copies it
//! made. (Roles, functions, log groups, secrets and policies have unique names: a twin's create
//! fails as "exists", and the run adopts what the other made.)

use std::time::Duration;

use anyhow::Result;

use crate::aws::Aws;
use crate::error::ConcurrentRun;
use crate::stack::{Stack, run_id};
use crate::vocabulary::{Progress, Step};

/// Something of the stack that twin runs may each have made.
pub trait MadeTwice {
    fn id(&self) -> &str;
    /// When AWS made it, in the whole seconds API Gateway keeps; 0 where it keeps none.
    fn created(&self) -> i64;
}

/// How long after making one to look for twins' copies: creation times are whole seconds, so
/// by then anything made in the same second or before is listed, and every run sees the same.
pub const SAME_MOMENT: Duration = Duration::from_millis(1200);

/// The one every run keeps: the first made, and of those made in the same second the lowest
/// id. The first made is the one a twin may already have handed out.
pub fn kept<T: MadeTwice>(copies: &[T]) -> Option<&T> {
    copies.iter().min_by(|a, b| order(*a).cmp(&order(*b)))
}

/// Sorts `copies` so the one [`kept`] comes first.
pub fn oldest_first<T: MadeTwice>(copies: &mut [T]) {
    copies.sort_by(|a, b| order(a).cmp(&order(b)));
}

fn order<T: MadeTwice>(copy: &T) -> (i64, &str) {
    (copy.created(), copy.id())
}

/// A kind of gateway twin runs may each make, each copy tagged with the run that made it.
/// A gateway kind that can be made twice implements it, and [`settle`] does the rest.
pub trait Gateway {
    type Copy: MadeTwice;
    /// What a person reads, such as "REST API".
    const KIND: &'static str;
    /// The step its progress is told under.
    const STEP: Step;
    /// The run that made `copy`, when tokendeploy did.
    fn run(copy: &Self::Copy) -> Option<&str>;
    /// The stack's copies (by name and tag).
    fn list(aws: &Aws, stack: &Stack) -> impl Future<Output = Result<Vec<Self::Copy>>> + Send;
    fn delete(aws: &Aws, id: &str, progress: &dyn Progress) -> impl Future<Output = Result<()>> + Send;
}

/// Settles with any twin run once this one has made `made` (side by side with building it): of
/// all the stack's copies, the one [`kept`] decides. When it is this run's, `made` stays and
/// this run's other copies (made by a lost answer, retried) go; when it is a twin's, this run
/// removes all its own and stops with [`ConcurrentRun`].
pub async fn settle<G: Gateway>(aws: &Aws, stack: &Stack, made: &str, progress: &dyn Progress) -> Result<()> {
    progress.note(G::STEP, "checking that no other run made one at the same moment");
    tokio::time::sleep(SAME_MOMENT).await;
    let copies = G::list(aws, stack).await?;
    // Not listed: a twin asking for another gateway removed it meanwhile.
    let Some(oldest) = kept(&copies).filter(|_| copies.iter().any(|copy| copy.id() == made)) else {
        let (stack, kind, id) = (stack.name.clone(), G::KIND, made.to_string());
        return Err(ConcurrentRun::RemovedGateway { stack, kind, id }.into());
    };
    let won = G::run(oldest) == Some(run_id());
    let kept_id = oldest.id().to_string();
    let ours = copies.iter().filter(|copy| G::run(copy) == Some(run_id()));
    let removed: Vec<String> =
        ours.filter(|copy| !won || copy.id() != made).map(|copy| copy.id().to_string()).collect();
    for id in &removed {
        G::delete(aws, id, progress).await?;
    }
    match won {
        true => Ok(()),
        false => Err(ConcurrentRun::MadeGateway {
            stack: stack.name.clone(),
            kind: G::KIND,
            kept: kept_id,
            removed,
        }
        .into()),
    }
}

/// Removes this run's copies but `keep`: those a retried create made.
pub async fn remove_own_copies<G: Gateway>(
    aws: &Aws,
    stack: &Stack,
    keep: Option<&str>,
    progress: &dyn Progress,
) -> Result<()> {
    let copies = G::list(aws, stack).await?;
    let own = copies.iter().filter(|copy| G::run(copy) == Some(run_id()) && Some(copy.id()) != keep);
    for copy in own {
        G::delete(aws, copy.id(), progress).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Copy(&'static str, i64);

    impl MadeTwice for Copy {
        fn id(&self) -> &str {
            self.0
        }
        fn created(&self) -> i64 {
            self.1
        }
    }

    #[test]
    fn the_first_made_is_kept_and_a_tie_goes_to_the_lowest_id() {
        assert_eq!(kept(&[Copy("b", 5), Copy("a", 7)]).map(MadeTwice::id), Some("b"));
        assert_eq!(kept(&[Copy("c", 5), Copy("a", 5), Copy("b", 5)]).map(MadeTwice::id), Some("a"));
        assert!(kept::<Copy>(&[]).is_none());
        let mut copies = [Copy("c", 5), Copy("z", 1), Copy("a", 5)];
        oldest_first(&mut copies);
        assert_eq!(copies.map(|copy| copy.0), ["z", "a", "c"]);
    }
}
