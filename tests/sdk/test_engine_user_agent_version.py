"""`user_agent` versions carry every component the parser finds (major.minor.patch.patch_minor), so a
Chrome user agent reports 77.0.3865.90, the version its own string states."""

from sdk.mapping import formats

CHROME_MAC = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_14_5) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/77.0.3865.90 Safari/537.36"
)
FIREFOX_WIN = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0"


def test_browser_version_keeps_the_build_number():
    assert formats.user_agent(CHROME_MAC, "browser") == "Chrome"
    assert formats.user_agent(CHROME_MAC, "browser_version") == "77.0.3865.90"
    assert formats.user_agent(CHROME_MAC, "browser_major") == "77"


def test_shorter_versions_are_not_padded():
    assert formats.user_agent(FIREFOX_WIN, "browser_version") == "125.0"
    assert formats.user_agent(CHROME_MAC, "os_version") == "10.14.5"


def test_device_model_of_a_desktop_mac_and_of_an_unknown_device():
    assert formats.user_agent(CHROME_MAC, "device_model") == "Mac"
    assert formats.user_agent(FIREFOX_WIN, "device_model") is None
