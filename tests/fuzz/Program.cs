using MixupBert.Fuzz;
using SharpFuzz;

// usage: MixupBert.Fuzz <target>                 fuzz under afl-fuzz (SharpFuzz's out-of-process runner)
//        MixupBert.Fuzz <target> --repro FILE...  run the target on files and print what each throws
//        MixupBert.Fuzz --seed-corpus DIR         write the seed corpus (small valid inputs) under DIR/<target>/
if (args.Length >= 2 && args[0] == "--seed-corpus") { SeedCorpus.Write(args[1]); return 0; }
if (args.Length < 1 || !Targets.All.TryGetValue(args[0], out var target))
{
    Console.Error.WriteLine($"usage: MixupBert.Fuzz <{string.Join("|", Targets.All.Keys)}> [--repro FILE...] | --seed-corpus DIR");
    return 2;
}
if (args.Length >= 2 && args[1] == "--repro") return Repro.Run(target, args[2..]);
Fuzzer.OutOfProcess.Run(target);
return 0;
