using System.Text.Json;
using FluentAssertions;
using Forgetless.Data.ChatTemplates;
using Xunit;

namespace Forgetless.Tests.Data.ChatTemplates;

/// <summary>
/// The real chat templates of Qwen2.5, Llama 3.1/3.2, SmolLM2 and Mistral (v0.2 and Nemo), as their tokenizer_config.json
/// files carry them (copies in templates/, see NOTICE.md), rendered by our Jinja subset exactly as Jinja2 itself renders
/// them under transformers' settings: expected.json holds Jinja2's outputs (render_expected.py), refusals included.
/// </summary>
public sealed class ChatTemplateTests
{
    private static readonly string Folder = Path.Combine(AppContext.BaseDirectory, "Data", "ChatTemplates");

    public static TheoryData<int> Cases()
    {
        var data = new TheoryData<int>();
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(Folder, "expected.json")));
        for (int i = 0; i < doc.RootElement.GetArrayLength(); i++) data.Add(i);
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void A_real_template_renders_as_jinja2_renders_it(int index)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(Folder, "expected.json")));
        var c = doc.RootElement[index];
        var name = c.GetProperty("template").GetString()!;
        var template = new JinjaTemplate(File.ReadAllText(Path.Combine(Folder, "templates", name + ".jinja")));
        var variables = c.GetProperty("variables").EnumerateObject().ToDictionary(p => p.Name, p => JinjaValuesFromJson(p.Value));
        var render = () => template.Render(variables);
        if (c.TryGetProperty("error", out var error))
            render.Should().Throw<ChatTemplateException>().Which.Message.Should().Contain(error.GetString()!);
        else
            render().Should().Be(c.GetProperty("expected").GetString(), $"{name}, {c.GetProperty("case").GetString()}");
    }

    [Fact]
    public void Unsupported_syntax_is_an_error_naming_the_line()
    {
        var act = () => new JinjaTemplate("line one\n{% macro m() %}x{% endmacro %}");
        act.Should().Throw<ChatTemplateException>().WithMessage("line 2: *macro*not supported*");
    }

    private static object? JinjaValuesFromJson(JsonElement e) => JinjaValues.FromJson(e);
}
