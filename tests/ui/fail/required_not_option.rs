use sealed_session::SessionData;

#[derive(SessionData, Default)]
struct MySession {
    #[session(required)]
    user_id: String,
}

fn main() {}
