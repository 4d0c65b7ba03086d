using System.Globalization;

namespace MixupBert.Model.Data;

/// <summary>One split with labels mapped to class ids.</summary>
public sealed record LabeledSplit(string Name, string Source, string[] Texts, int[] Labels)
{
    public int Count => Texts.Length;

    /// <summary>Each example's second text (sentence-pair classification); null for single texts.</summary>
    public string[]? Pairs { get; init; }

    public LabeledSplit Subset(IReadOnlyList<int> rows, string? name = null) =>
        new(name ?? Name, Source, rows.Select(r => Texts[r]).ToArray(), rows.Select(r => Labels[r]).ToArray())
        {
            Pairs = Pairs == null ? null : rows.Select(r => Pairs[r]).ToArray(),
        };
}

/// <summary>
/// A text-classification dataset: train, validation (split off train, seeded and stratified, when
/// the dataset has none) and test (when it has one), with the label names in class-id order.
/// </summary>
public sealed record TextClassificationData(LabeledSplit Train, LabeledSplit Validation, LabeledSplit? Test, string[] LabelNames, bool ValidationFromTrain)
{
    /// <summary>Reads and checks the splits, one file each; see the overload for splits in several files.</summary>
    public static TextClassificationData Load(IReadOnlyDictionary<string, string> files, string textColumn, string labelColumn, int seed,
        double validationFraction = 0.1, IReadOnlyList<string>? labelNames = null, string? pairColumn = null,
        IReadOnlyDictionary<string, IReadOnlyList<string>>? classLabels = null) =>
        Load(files.ToDictionary(kv => kv.Key, kv => (IReadOnlyList<string>)[kv.Value]), textColumn, labelColumn, seed, validationFraction, labelNames, pairColumn, classLabels);

    /// <summary>Reads and checks the splits, each from one or more files (shards, read in the order given):
    /// every text non-empty (a pair's second text may be empty: the pair is still an example), every label present and known.
    /// Errors name the file and its row.</summary>
    /// <param name="labelNames">the model's labels when they are fixed (evaluating a fine-tuned checkpoint); null to take them from the data.</param>
    /// <param name="pairColumn">the column of each example's second text (sentence-pair classification); null for single texts.</param>
    /// <param name="classLabels">the dataset card's class names per column (<see cref="Hub.DatasetCard.ClassLabels"/>): the
    /// label column's name the classes where the files' own metadata does not.</param>
    public static TextClassificationData Load(IReadOnlyDictionary<string, IReadOnlyList<string>> files, string textColumn, string labelColumn, int seed,
        double validationFraction = 0.1, IReadOnlyList<string>? labelNames = null, string? pairColumn = null,
        IReadOnlyDictionary<string, IReadOnlyList<string>>? classLabels = null)
    {
        if (pairColumn == textColumn) throw new ArgumentException($"--text-pair-column names the text column '{textColumn}' itself; it is the column of each example's second text");
        var raw = new Dictionary<string, List<RawSplit>>();
        var unlabeled = new List<string>();
        foreach (var (split, paths) in files)
        {
            if (paths.Count == 0) continue;
            var parts = new List<RawSplit>();
            string reading = paths[0];
            try
            {
                foreach (var path in paths) { reading = path; parts.Add(TextTable.Read(path, textColumn, labelColumn, pairColumn)); }
            }
            catch (DataFormatException e) when (split != "train" && e.MissingLabelColumn != null)
            {
                unlabeled.Add($"{reading}: no label column '{labelColumn}': the {split} split has no labels and is not used");
                continue;
            }
            // a benchmark's hidden test labels: GLUE's test splits carry -1 in every row
            if (split != "train" && parts.Sum(r => r.Labels.Length) > 0 && parts.All(r => r.IntegerLabels && r.Labels.All(l => l == "-1")))
            {
                unlabeled.Add($"{Describe(parts)}: every label in column '{labelColumn}' is -1 (labels withheld, as in GLUE's test splits): the {split} split is not used");
                continue;
            }
            raw[split] = parts;
        }
        if (!raw.ContainsKey("train")) throw new DataFormatException("the dataset has no train split");
        var allFiles = raw.Values.SelectMany(p => p).ToList();
        foreach (var (split, parts) in raw)
        {
            if (parts.Sum(r => r.Texts.Length) == 0) throw new DataFormatException($"{Describe(parts)}: the {split} split is empty");
            foreach (var r in parts)
                for (int i = 0; i < r.Texts.Length; i++)
                {
                    if (string.IsNullOrWhiteSpace(r.Texts[i])) throw new DataFormatException($"{r.Source}: column '{textColumn}', row {i}: empty text");
                    if (r.Labels[i] == null) throw new DataFormatException($"{r.Source}: column '{labelColumn}', row {i}: missing label");
                }
        }
        CheckLabels(allFiles, labelColumn);
        var train = Merge(raw["train"]);
        string[] names = labelNames?.ToArray() ?? LabelNamesOf(allFiles, train, labelColumn, classLabels?.GetValueOrDefault(labelColumn));
        var map = new Dictionary<string, int>(StringComparer.Ordinal);
        // integer labels are class ids; string labels are class names
        bool byIndex = allFiles.All(r => r.IntegerLabels);
        for (int i = 0; i < names.Length; i++) map[byIndex ? i.ToString(CultureInfo.InvariantCulture) : names[i].Trim()] = i;

        // each file's labels mapped on their own, so that an error names its file and row
        LabeledSplit Map(string split, List<RawSplit> parts)
        {
            var ids = new List<int>();
            foreach (var r in parts)
                for (int i = 0; i < r.Labels.Length; i++)
                {
                    if (!map.TryGetValue(LabelKey(r.Labels[i]!, byIndex), out int id))
                        throw new DataFormatException(byIndex
                            ? $"{r.Source}: column '{labelColumn}', row {i}: label {r.Labels[i]} is outside 0..{names.Length - 1} (num_labels {names.Length})"
                            : $"{r.Source}: column '{labelColumn}', row {i}: label '{r.Labels[i]}' is not one of the labels [{string.Join(", ", names)}]");
                    ids.Add(id);
                }
            return new LabeledSplit(split, Describe(parts), parts.SelectMany(r => r.Texts).ToArray(), ids.ToArray())
            {
                Pairs = pairColumn == null ? null : parts.SelectMany(r => r.Pairs!).ToArray(),
            };
        }

        var mappedTrain = Map("train", raw["train"]);
        if (labelNames == null) RequireTwoClasses(mappedTrain, names, labelColumn);
        LabeledSplit validation;
        bool fromTrain = !raw.ContainsKey("validation");
        if (fromTrain)
        {
            var (rest, held) = StratifiedSplit(mappedTrain.Labels, validationFraction, seed);
            validation = mappedTrain.Subset(held, "validation");
            mappedTrain = mappedTrain.Subset(rest, "train");
        }
        else validation = Map("validation", raw["validation"]);
        // checked now, not after an epoch of training whose evaluation would have nothing to average
        if (validation.Count == 0)
            throw new DataFormatException($"{train.Source}: no example could be held out of train for validation (each class has a single example); give the dataset a validation split");
        var test = raw.TryGetValue("test", out var t) ? Map("test", t) : null;
        return new TextClassificationData(mappedTrain, validation, test, names, fromTrain)
        {
            Warnings = [.. unlabeled, .. allFiles.SelectMany(r => r.Warnings).Distinct()],
        };
    }

    /// <summary>A split's files as messages name them: the file, or the first and how many more.</summary>
    private static string Describe(List<RawSplit> parts) => parts.Count == 1 ? parts[0].Source : $"{parts[0].Source} and {parts.Count - 1} more";

    /// <summary>A split's files as one (for its label names: the first file's metadata, as `datasets` reads the features once).</summary>
    private static RawSplit Merge(List<RawSplit> parts) => parts.Count == 1 ? parts[0]
        : new RawSplit(Describe(parts), parts.SelectMany(r => r.Texts).ToArray(), parts.SelectMany(r => r.Labels).ToArray(),
            parts.All(r => r.IntegerLabels), parts.Select(r => r.LabelNames).FirstOrDefault(n => n != null));

    /// <summary>Notes about the files that are not errors (each names its file), for the caller to show.</summary>
    public IReadOnlyList<string> Warnings { get; init; } = [];

    /// <summary>At most this many classes: more means the label column is probably not a label column.</summary>
    public const int MaxClasses = Weights.BertConfig.MaxLabels;

    /// <summary>Spellings that pandas and friends write for a missing value; as a label they would become a class.</summary>
    private static readonly HashSet<string> MissingValueMarkers = new(StringComparer.OrdinalIgnoreCase) { "nan", "-nan", "null", "n/a", "#n/a" };

    /// <summary>How a label is looked up: a class id in canonical form, or a class name without surrounding spaces.</summary>
    private static string LabelKey(string label, bool byIndex) =>
        byIndex ? long.Parse(label, NumberStyles.Integer, CultureInfo.InvariantCulture).ToString(CultureInfo.InvariantCulture) : label.Trim();

    /// <summary>
    /// Refuses label columns that would silently make the wrong classes: missing-value markers such as
    /// NaN, class ids mixed with class names, and names that differ only in spaces or case.
    /// </summary>
    private static void CheckLabels(List<RawSplit> splits, string labelColumn)
    {
        (RawSplit Split, int Row)? firstId = null, firstName = null;
        foreach (var r in splits)
            for (int i = 0; i < r.Labels.Length; i++)
            {
                string label = r.Labels[i]!;
                if (MissingValueMarkers.Contains(label.Trim()))
                    throw new DataFormatException($"{r.Source}: column '{labelColumn}', row {i}: label '{label}' is a missing-value marker, not a class; remove or fix the row");
                if (IsInteger(label)) firstId ??= (r, i); else firstName ??= (r, i);
            }
        if (firstId is var (idSplit, idRow) && firstName is var (nameSplit, nameRow))
            throw new DataFormatException($"{nameSplit.Source}: column '{labelColumn}' mixes class ids and class names: " +
                $"row {idRow}{(idSplit == nameSplit ? "" : $" of {idSplit.Source}")} has '{idSplit.Labels[idRow]}', row {nameRow} has '{nameSplit.Labels[nameRow]}'; labels must be all integers or all names");
        if (firstName == null) return;
        var spellings = new Dictionary<string, (string Label, RawSplit Split, int Row)>(StringComparer.OrdinalIgnoreCase);
        foreach (var r in splits)
            for (int i = 0; i < r.Labels.Length; i++)
            {
                string label = r.Labels[i]!;
                if (!spellings.TryAdd(label.Trim(), (label, r, i)) && spellings[label.Trim()] is var (other, otherSplit, otherRow) && other != label)
                    throw new DataFormatException($"{r.Source}: column '{labelColumn}', row {i}: label '{label}' differs from '{other}' " +
                        $"(row {otherRow}{(otherSplit == r ? "" : $" of {otherSplit.Source}")}) only in spaces or case; spell each class one way");
            }
        if (spellings.Count > MaxClasses)
            throw new DataFormatException($"{splits[0].Source}: column '{labelColumn}' has {spellings.Count} distinct labels, more than {MaxClasses}; is it really the label column?");
    }

    private static bool IsInteger(string label) => long.TryParse(label, NumberStyles.Integer, CultureInfo.InvariantCulture, out _);

    private static void RequireTwoClasses(LabeledSplit train, string[] names, string labelColumn)
    {
        var present = train.Labels.Distinct().ToArray();
        if (present.Length < 2)
            throw new DataFormatException($"{train.Source}: column '{labelColumn}' holds a single class ('{names[present[0]]}') in the train split; a classifier needs at least two");
    }

    /// <summary>Integer labels: 0..max, named by the dataset card's ClassLabel names (which datasets casts the files
    /// to), else the file's own; string labels: the card's names in its order (datasets' str2int), else sorted. The
    /// card's names must be distinct and cover every integer label, as datasets' cast requires.</summary>
    private static string[] LabelNamesOf(List<RawSplit> splits, RawSplit train, string labelColumn, IReadOnlyList<string>? cardNames)
    {
        if (cardNames != null && cardNames.Count > MaxClasses)
            throw new DataFormatException($"the dataset card (README.md) names {cardNames.Count} classes for column '{labelColumn}', more than {MaxClasses}");
        if (cardNames?.GroupBy(n => n, StringComparer.Ordinal).FirstOrDefault(g => g.Count() > 1) is { } twice)
            throw new DataFormatException($"the dataset card (README.md) names the class '{twice.Key}' of column '{labelColumn}' twice");
        if (splits.All(r => r.IntegerLabels))
        {
            long max = 0;
            foreach (var r in splits)
                for (int i = 0; i < r.Labels.Length; i++)
                {
                    long v = long.Parse(r.Labels[i]!, CultureInfo.InvariantCulture);
                    if (v < 0 || v >= MaxClasses) throw new DataFormatException($"{r.Source}: column '{labelColumn}', row {i}: label {v} is not a class id (0 or more, below {MaxClasses})");
                    if (cardNames != null && v >= cardNames.Count)
                        throw new DataFormatException($"{r.Source}: column '{labelColumn}', row {i}: label {v}, but the dataset card (README.md) names {cardNames.Count} classes ({string.Join(", ", cardNames)})");
                    max = Math.Max(max, v);
                }
            var fromFile = cardNames ?? train.LabelNames;
            if (fromFile != null && fromFile.Count > MaxClasses)
                throw new DataFormatException($"{train.Source}: the file's metadata names {fromFile.Count} classes for column '{labelColumn}', more than {MaxClasses}");
            if (fromFile != null && fromFile.Count > max) return fromFile.ToArray();
            return Enumerable.Range(0, (int)max + 1).Select(i => i.ToString(CultureInfo.InvariantCulture)).ToArray();
        }
        if (cardNames != null) return cardNames.ToArray();
        return train.Labels.Select(l => l!.Trim()).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToArray();
    }

    /// <summary>Holds out about <paramref name="fraction"/> of each class (at least one where the class has two or more), seeded.</summary>
    public static (int[] Kept, int[] Held) StratifiedSplit(int[] labels, double fraction, int seed)
    {
        var rng = new Random(seed);
        var rest = new List<int>(); var held = new List<int>();
        foreach (var group in Enumerable.Range(0, labels.Length).GroupBy(i => labels[i]).OrderBy(g => g.Key))
        {
            var rows = group.ToArray();
            rng.Shuffle(rows);
            int k = rows.Length < 2 ? 0 : Math.Max(1, (int)Math.Round(rows.Length * fraction));
            held.AddRange(rows.Take(k)); rest.AddRange(rows.Skip(k));
        }
        rest.Sort(); held.Sort();
        return (rest.ToArray(), held.ToArray());
    }

    /// <summary>A seeded stratified subset of train: <paramref name="total"/> examples in the classes' proportions, or <paramref name="perClass"/> of each.</summary>
    public LabeledSplit TrainSubset(int? total, int? perClass, int seed)
    {
        if (total == null && perClass == null) return Train;
        var rng = new Random(seed);
        var chosen = new List<int>();
        var groups = Enumerable.Range(0, Train.Count).GroupBy(i => Train.Labels[i]).OrderBy(g => g.Key).Select(g => g.ToArray()).ToList();
        foreach (var rows in groups) rng.Shuffle(rows);
        if (perClass is int k)
        {
            foreach (var rows in groups)
            {
                if (rows.Length < k) throw new DataFormatException($"{Train.Source}: --per-class {k} asks for more examples than class {LabelNames[Train.Labels[rows[0]]]} has ({rows.Length})");
                chosen.AddRange(rows.Take(k));
            }
        }
        else
        {
            int n = total!.Value;
            if (n > Train.Count) throw new DataFormatException($"{Train.Source}: --train-size {n} is larger than the train split ({Train.Count})");
            // largest remainders: each class gets its share of n, rounding fairly
            var shares = groups.Select(g => (double)g.Length * n / Train.Count).ToArray();
            var counts = shares.Select(s => (int)Math.Floor(s)).ToArray();
            foreach (int i in Enumerable.Range(0, groups.Count).OrderByDescending(i => shares[i] - counts[i]).ThenBy(i => i).Take(n - counts.Sum())) counts[i]++;
            for (int i = 0; i < groups.Count; i++) chosen.AddRange(groups[i].Take(counts[i]));
        }
        chosen.Sort();
        return Train.Subset(chosen);
    }
}
