using MixupBert.Model.Hub;

namespace MixupBert.Tests.Hub;

/// <summary>The names the Hub client accepts before turning them into cache paths.</summary>
public class HubNamesTests
{
    // the examples of huggingface_hub's validate_repo_id docstring, and the ids this tool uses
    [Theory]
    [InlineData("foo")]
    [InlineData("foo/bar")]
    [InlineData("123")]
    [InlineData("Foo-BAR_foo.bar123")]
    [InlineData("google-bert/bert-base-cased")]
    [InlineData("cornell-movie-review-data/rotten_tomatoes")]
    public void AcceptsRepoIds(string id) => Assert.True(HubNames.IsRepoId(id));

    [Theory]
    [InlineData("datasets/foo/bar")]
    [InlineData(".repo_id")]
    [InlineData("foo--bar")]
    [InlineData("foo.git")]
    [InlineData("other..repo..id")]
    [InlineData("../x")]
    [InlineData("/foo")]
    [InlineData("foo/")]
    [InlineData("foo-")]
    [InlineData("café/x")]
    [InlineData("")]
    public void RejectsRepoIds(string id) => Assert.False(HubNames.IsRepoId(id));

    [Theory]
    [InlineData("main")]
    [InlineData("v1.0")]
    [InlineData("refs/pr/1")]
    [InlineData("feature/x-y_z")]
    public void AcceptsRevisions(string revision) => Assert.True(HubNames.IsRevision(revision));

    [Theory]
    [InlineData("")]
    [InlineData("..")]
    [InlineData("../../x")]
    [InlineData("/tmp/x")]
    [InlineData("a//b")]
    [InlineData(".hidden")]
    [InlineData("a/.b")]
    [InlineData("x.lock")]
    [InlineData("a b")]
    [InlineData("a\\b")]
    [InlineData("a:b")]
    [InlineData("x@{1}")]
    public void RejectsRevisions(string revision) => Assert.False(HubNames.IsRevision(revision));

    [Theory]
    [InlineData("config.json")]
    [InlineData("data/train-00000-of-00001.parquet")]
    [InlineData("a..b/.gitattributes")]
    public void AcceptsFileNames(string file) => Assert.True(HubNames.IsFileName(file));

    [Theory]
    [InlineData("")]
    [InlineData("../x")]
    [InlineData("a/../../x")]
    [InlineData("/etc/passwd")]
    [InlineData("a//b")]
    [InlineData("./a")]
    [InlineData("a\\..\\b")]
    [InlineData("a\0b")]
    public void RejectsFileNames(string file) => Assert.False(HubNames.IsFileName(file));

    [Fact]
    public void CommitsAreFortyLowercaseHexDigits()
    {
        Assert.True(HubNames.IsCommit("0123456789abcdef0123456789abcdef01234567"));
        Assert.False(HubNames.IsCommit("0123456789ABCDEF0123456789abcdef01234567"));
        Assert.False(HubNames.IsCommit("0123456789abcdef"));
        Assert.False(HubNames.IsCommit("../../../../tmp/x"));
    }

    [Fact]
    public void InsideAcceptsPathsBelowTheRootOnly()
    {
        var root = Path.Combine(Path.GetTempPath(), "hub-names-root");
        Assert.Equal(Path.Combine(root, "a", "b"), HubNames.Inside(root, Path.Combine(root, "a", "..", "a", "b"), "test"));
        Assert.Throws<HubException>(() => HubNames.Inside(root, Path.Combine(root, "..", "x"), "test"));
        Assert.Throws<HubException>(() => HubNames.Inside(root, root + "-sibling/x", "test"));
        Assert.Throws<HubException>(() => HubNames.Inside(root, root, "test"));
    }
}
