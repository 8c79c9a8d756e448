//! Generic session data: type and const parameters, bounds, defaults.
use sealed_session::{Required, Session, SessionData};
use serde::{Serialize, de::DeserializeOwned};

#[derive(SessionData, Default)]
struct Wrapper<T, const N: usize = 2>
where
    T: Clone,
{
    #[session(required)]
    value: Option<T>,
    recent: Vec<T>,
    plain: u8,
}

#[derive(SessionData, Default)]
struct Bounded<K: Ord + Clone + Serialize + DeserializeOwned + Send + Sync + 'static> {
    keys: std::collections::BTreeSet<K>,
}

fn use_it<T: Clone + Default + Serialize + DeserializeOwned + Send + Sync + 'static>(
    session: &Session<Wrapper<T>>,
    value: T,
) -> Option<T> {
    session.set_value(Some(value));
    session.set_recent(Vec::new());
    Required::<Wrapper<T>, Value>::from_session(session.clone())
        .ok()
        .map(Required::into_value)
}

fn main() {
    let session = Session::<Wrapper<String, 3>>::detached();
    session.set_plain(1);
    assert_eq!(session.plain(), 1);
    assert_eq!(use_it(&Session::<Wrapper<u64>>::detached(), 5), Some(5));
    let bounded = Session::<Bounded<String>>::detached();
    bounded.set_keys(["a".to_owned()].into());
    assert_eq!(bounded.keys().len(), 1);
}
