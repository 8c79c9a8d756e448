//! The struct in one module, the handlers in another, the session type
//! named once with an alias.
mod session {
    use sealed_session::SessionData;
    use serde::{Deserialize, Serialize};

    #[derive(SessionData, Default, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct MySession {
        #[session(required)]
        pub(crate) user_id: Option<String>,
    }

    /// The app's session type.
    pub type Session = sealed_session::Session<MySession>;
}

mod handlers {
    use crate::session::{MySession, Session, UserId};
    use sealed_session::Required;

    pub fn login(session: &Session, user: &str) {
        session.regenerate();
        session.set_user_id(Some(user.to_owned()));
    }

    pub fn me(user: Required<MySession, UserId>) -> String {
        user.into_value()
    }
}

fn main() {
    let session = session::Session::detached();
    handlers::login(&session, "42");
    let user = sealed_session::Required::from_session(session).unwrap();
    assert_eq!(handlers::me(user), "42");
}
