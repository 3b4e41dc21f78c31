using Forgetless.Model.Inference;

namespace Forgetless.Tests.Model;

/// <summary>
/// How scoring lays (context, continuation) pairs out as rows: continuations of one context share it when the context
/// is at least as long as the continuation's branch; otherwise each pair is a plain row, as it would be scored alone.
/// </summary>
public sealed class ScoringRowTests
{
    private const int Bos = 99;

    [Fact]
    public void First_rolling_windows_of_different_texts_are_plain_rows_not_branches_of_the_bos_token()
    {
        // Two texts' first windows: each is conditioned on BOS alone and scores five tokens.
        var rows = ScoringRow.Plan([([Bos], [1, 2, 3, 4, 5]), ([Bos], [6, 7, 8, 9, 10])], maxLength: 8);

        rows.Should().HaveCount(2);
        rows[0].HasBranches.Should().BeFalse();
        rows[0].Tokens.Should().Equal(Bos, 1, 2, 3, 4);
        rows[0].Scored.Should().ContainSingle().Which.Predictors.Should().Equal(0, 1, 2, 3, 4);
        rows[1].Tokens.Should().Equal(Bos, 6, 7, 8, 9);
        rows[1].Scored.Single().Pair.Should().Be(1);
    }

    [Fact]
    public void Choices_no_longer_than_their_context_share_one_row_and_a_longer_one_gets_its_own()
    {
        int[] context = [10, 11];
        // Branches (continuation minus its last token): 0, 1 and 2 tokens share the 2-token context; 3 tokens do not.
        var rows = ScoringRow.Plan([(context, [20]), (context, [21, 22]), (context, [23, 24, 25]), (context, [26, 27, 28, 29])], maxLength: 16);

        rows.Should().HaveCount(2);
        var shared = rows[0];
        shared.Tokens.Should().Equal(10, 11, 21, 23, 24);
        shared.TrunkLength.Should().Be(2);
        shared.Branches.Should().Equal((2, 1), (3, 2));
        shared.Scored.Select(s => s.Pair).Should().Equal(0, 1, 2);
        shared.Scored[0].Predictors.Should().Equal(1);
        shared.Scored[1].Predictors.Should().Equal(1, 2);
        shared.Scored[2].Predictors.Should().Equal(1, 3, 4);

        var alone = rows[1];
        alone.HasBranches.Should().BeFalse();
        alone.Tokens.Should().Equal(10, 11, 26, 27, 28);
        alone.Scored.Single().Predictors.Should().Equal(1, 2, 3, 4);
    }
}
