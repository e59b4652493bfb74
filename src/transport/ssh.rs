// placeholder until the transport lands
use super::*;
pub struct SshTransport;
pub async fn connect(spec: &ConnectSpec) -> Result<SshTransport, TransportError> {
    Err(TransportError::Broken {
        host: spec.name.clone(),
        reason: "todo".into(),
    })
}
#[async_trait]
impl Transport for SshTransport {
    async fn exec(&self, _c: &str, _s: &[u8]) -> Result<ExecOutput, TransportError> {
        todo!()
    }
    async fn hold(&self, _c: &str, _s: &[u8]) -> Result<Held, TransportError> {
        todo!()
    }
    async fn close(&self) {}
}
