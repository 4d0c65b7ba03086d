namespace MixupBert.Model.Training;

/// <summary>What the trainer tells whoever shows progress (the CLI's live display or log lines).</summary>
public interface ITrainingObserver
{
    void Step(int epoch, long step, long totalSteps, double loss, float learningRate, double samplesPerSecond);
    void Evaluated(string split, int epoch, ClassificationMetrics metrics, bool best);
    void Message(string text);
}
