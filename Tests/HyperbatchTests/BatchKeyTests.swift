import Hyperbatch
import Testing

@Suite struct BatchKeyTests {
    struct EmbedKey: BatchKey { var provider, model, tenant: String }

    @Test func defaultLabelIsTheTypeName() {
        #expect(EmbedKey(provider: "p", model: "m", tenant: "t").metricsLabel == "EmbedKey")
        #expect("tenant-42".metricsLabel == "string")
    }
}
