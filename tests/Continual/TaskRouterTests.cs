using Forgetless.Continual;
using Forgetless.Peft;

namespace Forgetless.Tests.Continual;

public sealed class TaskRouterTests
{
    [Fact]
    public void An_input_goes_to_the_task_of_the_nearest_centroid_by_cosine()
    {
        // Centroids are stored at unit length, so only direction counts: a long vector near task c's is c's.
        var router = new TaskRouter(["a", "b", "c"], [[2f, 0f], [0f, 1f], [-1f, 0f]]);
        router.Centroids[0].Should().Equal(1f, 0f);
        router.Nearest([0.9f, 0.1f]).Should().Be(0);
        router.Nearest([0.1f, 0.9f]).Should().Be(1);
        router.Nearest([-0.98f, 0.2f]).Should().Be(2);
        // cos([0.6, 0.8], a) = 0.6 < cos(…, b) = 0.8
        router.Nearest([0.6f, 0.8f]).Should().Be(1);
    }

    [Fact]
    public void A_router_needs_one_centroid_per_task()
    {
        var make = () => new TaskRouter(["a", "b"], [[1f, 0f]]);
        make.Should().Throw<ArgumentException>();
    }

    [Fact]
    public void An_adapter_set_names_its_adapters_and_refuses_an_unknown_task()
    {
        string set = Directory.CreateTempSubdirectory("forgetless-set-").FullName;
        try
        {
            foreach (var name in new[] { "spam", "postag" })
            {
                Directory.CreateDirectory(Path.Combine(set, name));
                File.WriteAllText(Path.Combine(set, name, AdapterFolder.ConfigFile), "{}");
            }
            Directory.CreateDirectory(Path.Combine(set, "not-an-adapter"));
            AdapterSet.IsSet(set).Should().BeTrue();
            AdapterSet.Names(set).Should().Equal("postag", "spam");
            AdapterSet.IsSet(Path.Combine(set, "spam")).Should().BeFalse("a folder with its own adapter_config.json is one adapter");

            var unknown = () => AdapterSet.Choose(set, "syllables", null!, null!, null);
            unknown.Should().Throw<UserInputException>().WithMessage("*no adapter 'syllables'*postag, spam*");
            var noInput = () => AdapterSet.Choose(set, "auto", null!, null!, null);
            noInput.Should().Throw<UserInputException>().WithMessage("*--task auto routes one input*");
            var noRouter = () => AdapterSet.Choose(set, "auto", null!, null!, "Spam or ham?");
            noRouter.Should().Throw<UserInputException>().WithMessage("*no router.json*");
            AdapterSet.Choose(set, "spam", null!, null!, null).Should().Be(Path.Combine(set, "spam"));
        }
        finally
        {
            Directory.Delete(set, recursive: true);
        }
    }
}
