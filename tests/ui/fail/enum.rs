use sealed_session::SessionData;

#[derive(SessionData, Default)]
enum MySession {
    #[default]
    Anonymous,
    LoggedIn,
}

fn main() {}
