using Forgetless.Data;
using Forgetless.Data.ChatTemplates;
using Forgetless.Data.Sources;
using static Forgetless.Tests.Data.PrepareFixture;

namespace Forgetless.Tests.Data.ChatTemplates;

/// <summary>
/// Chat task sources through prepare: the three shapes people keep chat data in, rendered with a real model's template
/// (templates/, see NOTICE.md), and the loss only on what the assistant says. The stand-in tokenizer gives one id per
/// character, so a row's ids read back as the rendered text and every expectation below is written out by hand.
/// </summary>
public sealed class ChatDataTests
{
    private static readonly string Templates = Path.Combine(AppContext.BaseDirectory, "Data", "ChatTemplates", "templates");

    private static ChatRenderer Renderer(string name, string bos, string eos) =>
        new(new JinjaTemplate(File.ReadAllText(Path.Combine(Templates, name + ".jinja"))), bos, eos);

    private static ChatRenderer SmolLm2 => Renderer("HuggingFaceTB-SmolLM2-135M-Instruct", "<|im_start|>", "<|im_end|>");

    private static DataSourceOptions Chat(string path, ChatFormat format) => new() { Path = path, Chat = format };

    private static PrepareOptions Padded(params DataSourceOptions[] sources)
    {
        var options = Options(sources);
        options.Packing = PackingMode.Pad;
        options.SeqLen = 512;
        return options;
    }

    /// <summary>The row's text as its ids spell it, and the runs of ids that carry loss, each read back as text.</summary>
    private static (string Text, List<string> Trained) Read(PreparedSequence row)
    {
        var tokenizer = new CharTokenizer();
        var ids = row.InputIds[..row.Length];
        var trained = new List<string>();
        for (int i = 0; i < ids.Length; i++)
        {
            if (!row.LossMask[i]) continue;
            int end = i;
            while (end < ids.Length && row.LossMask[end]) end++;
            trained.Add(tokenizer.Decode(ids[i..end]));
            i = end;
        }
        row.LossMask[row.Length..].Should().NotContain(true, "padding carries no loss");
        return (tokenizer.Decode(ids), trained);
    }

    [Fact]
    public async Task Messages_sharegpt_and_alpaca_rows_render_as_the_same_conversation()
    {
        using var f = new PrepareFixture();
        var messages = f.WriteLines("messages.jsonl", ["""{"messages": [{"role": "system", "content": "Be brief"}, {"role": "user", "content": "Say hi\nto Ann"}, {"role": "assistant", "content": "Hi Ann"}]}"""]);
        var shareGpt = f.WriteLines("sharegpt.jsonl", ["""{"conversations": [{"from": "system", "value": "Be brief"}, {"from": "human", "value": "Say hi\nto Ann"}, {"from": "gpt", "value": "Hi Ann"}]}"""]);
        var alpaca = f.WriteLines("alpaca.jsonl", ["""{"system": "Be brief", "instruction": "Say hi", "input": "to Ann", "output": "Hi Ann"}"""]);
        var options = Padded(Chat(messages, ChatFormat.Messages), Chat(shareGpt, ChatFormat.ShareGpt), Chat(alpaca, ChatFormat.Alpaca));
        options.Dedup = false;

        var (_, output) = await f.RunAsync(options, chat: SmolLm2);

        var rows = await ReadTrainAsync(output);
        rows.Select(r => r.Source).Should().BeEquivalentTo("messages.jsonl", "sharegpt.jsonl", "alpaca.jsonl");
        foreach (var row in rows)
        {
            var (text, trained) = Read(row);
            text.Should().Be("<|im_start|>system\nBe brief<|im_end|>\n<|im_start|>user\nSay hi\nto Ann<|im_end|>\n<|im_start|>assistant\nHi Ann<|im_end|>\n", row.Source);
            trained.Should().Equal(["Hi Ann<|im_end|>\n"], row.Source);
            row.Text.Should().Equal(text);
        }
    }

    [Fact]
    public async Task Only_the_assistant_turns_carry_loss_in_every_family()
    {
        const string Turns = """{"messages": [{"role": "user", "content": "Hello"}, {"role": "assistant", "content": "Hi there"}, {"role": "user", "content": "Who are you"}, {"role": "assistant", "content": "   I am an assistant   "}]}""";
        (ChatRenderer Renderer, string[] Trained)[] families =
        [
            (Renderer("Qwen-Qwen2.5-7B-Instruct", "", "<|im_end|>"), ["Hi there<|im_end|>\n", "   I am an assistant   <|im_end|>\n"]),
            (SmolLm2, ["Hi there<|im_end|>\n", "   I am an assistant   <|im_end|>\n"]),
            // Llama 3 trims every turn's content.
            (Renderer("meta-llama-Llama-3.2-3B-Instruct", "<|begin_of_text|>", "<|eot_id|>"), ["Hi there<|eot_id|>", "I am an assistant<|eot_id|>"]),
            (Renderer("meta-llama-Llama-3.1-8B-Instruct", "<|begin_of_text|>", "<|eot_id|>"), ["Hi there<|eot_id|>", "I am an assistant<|eot_id|>"]),
            (Renderer("mistralai-Mistral-7B-Instruct-v0.2", "<s>", "</s>"), ["Hi there</s>", "   I am an assistant   </s>"]),
        ];
        foreach (var (renderer, expected) in families)
        {
            using var f = new PrepareFixture();
            var (_, output) = await f.RunAsync(Padded(Chat(f.WriteLines("c.jsonl", [Turns]), ChatFormat.Messages)), chat: renderer);

            var row = (await ReadTrainAsync(output)).Single();
            var (text, trained) = Read(row);
            trained.Should().Equal(expected);
            text.Should().Contain("Hello").And.Contain("Who are you").And.EndWith(expected[^1]);
        }
    }

    [Fact]
    public async Task Mistral_v02_renders_user_turns_in_inst_tags_and_the_loss_stays_on_the_answers()
    {
        using var f = new PrepareFixture();
        var path = f.WriteLines("c.jsonl", ["""{"messages": [{"role": "user", "content": "Q1"}, {"role": "assistant", "content": "A1"}, {"role": "user", "content": "Q2"}, {"role": "assistant", "content": "A2"}]}"""]);

        var (_, output) = await f.RunAsync(Padded(Chat(path, ChatFormat.Messages)), chat: Renderer("mistralai-Mistral-7B-Instruct-v0.2", "<s>", "</s>"));

        var (text, trained) = Read((await ReadTrainAsync(output)).Single());
        text.Should().Be("<s>[INST] Q1 [/INST]A1</s>[INST] Q2 [/INST]A2</s>");
        trained.Should().Equal("A1</s>", "A2</s>");
    }

    [Fact]
    public async Task A_conversation_the_template_refuses_is_a_bad_row_naming_file_line_and_the_templates_reason()
    {
        using var f = new PrepareFixture();
        var path = f.WriteLines("c.jsonl",
        [
            """{"messages": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"}]}""",
            """{"messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"}]}""",
        ]);
        var mistral = Renderer("mistralai-Mistral-7B-Instruct-v0.2", "<s>", "</s>");

        var failed = (await FluentActions.Awaiting(() => f.RunAsync(Padded(Chat(path, ChatFormat.Messages)), chat: mistral))
            .Should().ThrowAsync<DataFormatException>()).Which;
        failed.Line.Should().Be(2);
        failed.Message.Should().Contain(path).And.Contain("Conversation roles must alternate user/assistant/user/assistant/...");

        var skipping = Padded(Chat(path, ChatFormat.Messages));
        skipping.OnBadRow = BadRowPolicy.Skip;
        var (stats, output) = await f.RunAsync(skipping, "skipped", chat: mistral);
        stats.Filtered.Skipped.Should().Be(1);
        (await ReadTrainAsync(output)).Should().ContainSingle();
    }

    [Theory]
    [InlineData(ChatFormat.Messages, """{"messages": [{"role": "user", "content": "Q"}, {"role": "bot", "content": "A"}]}""", "messages[1].role is 'bot'; expected system, user or assistant.")]
    [InlineData(ChatFormat.Messages, """{"messages": [{"role": "user", "content": "Q"}]}""", "the conversation has no assistant turn")]
    [InlineData(ChatFormat.Messages, """{"conversations": []}""", "missing field 'messages'")]
    [InlineData(ChatFormat.ShareGpt, """{"conversations": [{"from": "human", "value": "Q"}, {"from": "gpt", "value": 3}]}""", "conversations[1].value is a number; expected a string.")]
    [InlineData(ChatFormat.ShareGpt, """{"conversations": [{"from": "human", "value": "Q"}, {"from": "bot", "value": "A"}]}""", "conversations[1].from is 'bot'; expected system, human or gpt.")]
    [InlineData(ChatFormat.Alpaca, """{"instruction": "Q"}""", "missing field 'output'; expected a string.")]
    public async Task A_malformed_chat_row_names_its_line_and_what_was_expected(ChatFormat format, string bad, string expected)
    {
        using var f = new PrepareFixture();
        var path = f.WriteLines("c.jsonl", ["""{"messages": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"}], "conversations": [{"from": "human", "value": "Q"}, {"from": "gpt", "value": "A"}], "instruction": "Q", "output": "A"}""", bad]);

        var ex = (await FluentActions.Awaiting(() => f.RunAsync(Padded(Chat(path, format)), chat: SmolLm2))
            .Should().ThrowAsync<DataFormatException>()).Which;

        ex.Line.Should().Be(2);
        ex.Message.Should().Contain(path).And.Contain(expected);
    }

    [Fact]
    public void Chat_options_that_cannot_work_are_configuration_errors()
    {
        var options = new PrepareOptions
        {
            TaskSources = [new DataSourceOptions { Path = "t.jsonl", Chat = ChatFormat.Alpaca, PromptField = "p", ResponseField = "r" },
                           new DataSourceOptions { Path = "t.csv", Chat = ChatFormat.Messages, Format = SourceFormat.Csv }],
            ReplaySources = [new DataSourceOptions { Path = "r.jsonl", Chat = ChatFormat.Messages }],
        };

        var errors = options.Validate();

        errors.Should().Contain("taskSources[0].chat: Alpaca reads its own fields; leave promptField, responseField and textField out.");
        errors.Should().Contain("taskSources[1].format: chat data is read from JSON lines (format jsonl), not Csv.");
        errors.Should().Contain("replaySources[0].chat: chat data is a task source; replay sources are plain text.");
    }

    [Fact]
    public void The_chat_key_reads_as_written_in_forgetless_json()
    {
        var options = PrepareOptions.FromJson("""{"taskSources": [{"path": "a.jsonl", "chat": "shareGpt"}, {"path": "b.jsonl", "chat": "messages"}, {"path": "c.jsonl"}]}""");

        options.TaskSources.Select(s => s.Chat).Should().Equal(ChatFormat.ShareGpt, ChatFormat.Messages, ChatFormat.None);
    }

    [Fact]
    public async Task A_chat_source_whose_file_is_not_json_lines_is_an_error_naming_it()
    {
        using var f = new PrepareFixture();
        var path = f.Write("c.csv", "messages\nx\n");

        var ex = (await FluentActions.Awaiting(() => f.RunAsync(Padded(Chat(path, ChatFormat.Messages)), chat: SmolLm2))
            .Should().ThrowAsync<DataFormatException>()).Which;

        ex.Message.Should().Contain(path).And.Contain("chat data (Messages) is read from JSON lines");
    }

    [Fact]
    public void The_template_and_special_tokens_come_from_tokenizer_config_json()
    {
        using var f = new PrepareFixture();
        f.Write("model/tokenizer_config.json", """
            {"bos_token": {"content": "<s>", "lstrip": false}, "eos_token": "</s>",
             "chat_template": "{{ bos_token }}{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}{{ eos_token }}{% endfor %}"}
            """);
        f.Write("bare/tokenizer_config.json", """{"eos_token": "</s>"}""");

        ChatRenderer.Load(Path.Combine(f.Root, "model")).Render([new("user", "Q"), new("assistant", "A")])
            .Should().Be("<s>user: Q</s>assistant: A</s>");
        FluentActions.Invoking(() => ChatRenderer.Load(Path.Combine(f.Root, "bare"))).Should().Throw<UserInputException>()
            .WithMessage($"{Path.Combine(f.Root, "bare", "tokenizer_config.json")}: has no chat_template*");
        FluentActions.Invoking(() => ChatRenderer.Load(Path.Combine(f.Root, "none"))).Should().Throw<UserInputException>()
            .WithMessage("*tokenizer_config.json: not found*");
    }

    [Fact]
    public async Task A_truncated_conversation_keeps_the_loss_on_the_assistant_tokens_that_fit()
    {
        using var f = new PrepareFixture();
        var path = f.WriteLines("c.jsonl", ["""{"messages": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "a long answer"}]}"""]);
        var options = Padded(Chat(path, ChatFormat.Messages));
        // SmolLM2 renders the default system turn (98 characters), "<|im_start|>user\nQ<|im_end|>\n" (29) and
        // "<|im_start|>assistant\n" (22): 149 characters before the answer; 155 keeps its first six.
        options.SeqLen = 155;

        var (stats, output) = await f.RunAsync(options, chat: SmolLm2);

        stats.Filtered.Truncated.Should().Be(1);
        Read((await ReadTrainAsync(output)).Single()).Trained.Should().Equal("a long");
    }
}
