using System.Text.Json;
using MixupBert.Kernels.Cuda;
using MixupBert.Model.Data;
using MixupBert.Model.Hub;
using MixupBert.Model.Weights;

namespace MixupBert.Tool;

/// <summary>
/// The one place where an exception that escaped a command becomes an exit code and a message.
/// What a user can cause or fix (bad files and options, an unwritable or full disk, a missing
/// folder) is exit 2 with the message, which names the file, column, tensor or option; Ctrl-C is
/// 130 (SIGTERM 143: Program.Stopped); a missing GPU 3. Anything else is a bug: exit 1 and one line saying so. The stack trace
/// only with --verbose.
/// </summary>
public static class ErrorReport
{
    public const int Ok = 0, Bug = 1, BadInput = 2, NoDevice = 3, Diverged = 4, Interrupted = 130, Terminated = 143;

    /// <summary>selftest: a check failed (the same number as <see cref="Bug"/>: a GPU result that is wrong is one).</summary>
    public const int ChecksFailed = 1;

    /// <summary>The message of a <see cref="GpuOutOfMemoryException"/> and what needs less memory.</summary>
    public static string OutOfGpuMemory(GpuOutOfMemoryException e) =>
        $"{e.Message}. Less is needed with a smaller --batch-size or --eval-batch-size (training reserves for the larger of the two), "
        + "a smaller --max-length, or --precision bf16 where the GPU has it; another process may also hold GPU memory";

    public static int Exit(Exception e, bool verbose, TextWriter error)
    {
        if (e is AggregateException { InnerExceptions.Count: 1 } a) e = a.InnerExceptions[0];
        int code = e switch
        {
            OperationCanceledException => Interrupted,
            CudaUnavailableException => NoDevice,
            DataFormatException or ModelFormatException or HubException or ArgumentException or JsonException
                or IOException or UnauthorizedAccessException or InsufficientMemoryException or GpuOutOfMemoryException => BadInput,
            _ => Bug,
        };
        string message = code switch
        {
            Interrupted => "interrupted",
            NoDevice => $"no CUDA device: {e.Message}",
            BadInput when e is UnauthorizedAccessException => $"cannot write or read there: {e.Message}",
            BadInput when e is JsonException => $"a JSON file is not valid: {e.Message}",
            BadInput when e is GpuOutOfMemoryException oom => OutOfGpuMemory(oom),
            BadInput => e.Message,
            _ => $"internal error ({e.GetType().Name}): {e.Message}. This is a bug in mixup-bert; please report it with the output of --verbose.",
        };
        error.WriteLine($"error: {message}");
        if (verbose) error.WriteLine(e.ToString());
        else if (code == Bug) error.WriteLine("(run again with --verbose for the stack trace)");
        return code;
    }
}
