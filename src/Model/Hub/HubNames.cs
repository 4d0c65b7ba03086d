using System.Text.RegularExpressions;

namespace MixupBert.Model.Hub;

/// <summary>
/// What the Hub client accepts as a repository id, revision, commit, file name or blob name before it
/// turns any of them into a path, and the final check that a path stays inside the cache. Names come
/// from the user, from the server's headers and from ref files in the cache; none is trusted.
/// </summary>
public static partial class HubNames
{
    /// <summary>huggingface_hub's REPO_ID_REGEX (utils/_validators.py, ASCII): "name" or "namespace/name",
    /// each part starting and ending with a letter, digit or '_', with '-', '_', '.' inside, the name at most 96.</summary>
    [GeneratedRegex(@"^(?:[A-Za-z0-9_](?:[A-Za-z0-9_.\-]*[A-Za-z0-9_])?/)?[A-Za-z0-9_](?:[A-Za-z0-9_.\-]{0,94}[A-Za-z0-9_])?$")]
    private static partial Regex RepoIdPattern();

    /// <summary>huggingface_hub's REGEX_COMMIT_HASH (file_download.py): 40 lowercase hex digits.</summary>
    [GeneratedRegex("^[0-9a-f]{40}$")]
    private static partial Regex CommitPattern();

    /// <summary>validate_repo_id: the pattern, and no "--" or ".." anywhere, and no ".git" at the end.</summary>
    public static bool IsRepoId(string repoId) =>
        RepoIdPattern().IsMatch(repoId) && !repoId.Contains("--") && !repoId.Contains("..") && !repoId.EndsWith(".git", StringComparison.Ordinal);

    public static bool IsCommit(string s) => CommitPattern().IsMatch(s);

    /// <summary>A branch or tag name by git's check-ref-format rules (what the Hub's revisions are),
    /// which also keeps it a relative path of plain folder names: no empty, '.'-led or ".lock" part,
    /// no "..", "@{", control characters, space or any of ~^:?*[\.</summary>
    public static bool IsRevision(string s) =>
        s.Length > 0 && !s.Contains("..") && !s.Contains("@{") && s != "@"
        && s.All(c => c > ' ' && c != '\x7f' && "~^:?*[\\".IndexOf(c) < 0)
        && s.Split('/').All(part => part.Length > 0 && part[0] != '.' && !part.EndsWith(".lock", StringComparison.Ordinal));

    /// <summary>A file in the repository as huggingface_hub splits it ('/'-separated): every part a
    /// plain name, none empty, "." or "..", no backslash (a separator on Windows) or control character.</summary>
    public static bool IsFileName(string s) =>
        s.Length > 0 && s.All(c => c >= ' ' && c != '\x7f' && c != '\\')
        && s.Split('/').All(part => part.Length > 0 && part != "." && part != "..");

    public static void CheckRepoId(string repoId)
    {
        if (!IsRepoId(repoId))
            throw new HubException($"'{repoId}' is not a Hub repository id: use 'name' or 'org/name' with letters, digits, '-', '_' and '.', not starting or ending with '-' or '.', without '--' or '..'");
    }

    public static void CheckRevision(string revision)
    {
        if (!IsCommit(revision) && !IsRevision(revision))
            throw new HubException($"revision '{revision}' is neither a commit hash nor a branch or tag name (no '..', no part starting with '.', no spaces or any of ~^:?*[\\)");
    }

    public static void CheckFileName(string file)
    {
        if (!IsFileName(file))
            throw new HubException($"'{file}' is not a file name inside a repository (parts separated by '/', none empty, '.' or '..')");
    }

    /// <summary><paramref name="path"/> made absolute, when it lies strictly inside <paramref name="root"/>;
    /// otherwise a HubException naming <paramref name="source"/>. Like huggingface_hub's _get_pointer_path
    /// this compares absolute paths without resolving symlinks, so a cache reached through a link still works.</summary>
    public static string Inside(string root, string path, string source)
    {
        string full = Path.GetFullPath(path);
        string top = Path.TrimEndingDirectorySeparator(Path.GetFullPath(root)) + Path.DirectorySeparatorChar;
        if (!full.StartsWith(top, StringComparison.Ordinal))
            throw new HubException($"{source} would put {full} outside the Hugging Face cache ({root}); refusing to write or read it");
        return full;
    }
}
